//! HTML writing: escaping (every text from the engine or the catalogues goes through
//! [`escape`]) and the layout every page shares (head, navigation, language switch, user).

use super::i18n::Lang;
use super::Reader;
use crate::roles::Role;

/// The opening of a list table: its column heads, from catalogue keys, up to `<tbody>`.
pub fn list_head(l: Lang, keys: &[&'static str]) -> String {
    let mut out = String::from("<table class=\"list\"><thead><tr>");
    for key in keys {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(l.t(key))));
    }
    out.push_str("</tr></thead><tbody>");
    out
}

/// A description list of figures: `open` is the `<dl ...>` tag (already HTML), each item a
/// catalogue key and its value (text, escaped here).
pub fn term_list(l: Lang, open: &str, items: &[(&'static str, String)]) -> String {
    let mut out = String::from(open);
    for (key, value) in items {
        out.push_str(&format!(
            "<div><dt>{}</dt><dd>{}</dd></div>",
            escape(l.t(key)),
            escape(value)
        ));
    }
    out.push_str("</dl>");
    out
}

/// Text safe in HTML content and in double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole document: `page` names the page for the scripts (`data-page`), `head_extra` is
/// more of the head (already HTML), `main` the content.
pub fn document(lang: Lang, title: &str, page: &str, head_extra: &str, main: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · svi</title>{head_extra}\
         <link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
         <script src=\"/ui/assets/app.js\" defer></script></head>\
         <body data-page=\"{page}\">{main}</body></html>",
        code = lang.code(),
        title = escape(title),
        page = escape(page),
    )
}

/// The frame of a signed-in page.
pub struct Layout<'a> {
    reader: &'a Reader,
    path: &'static str,
    /// Already in the reader's language.
    title: &'static str,
    /// The URL the scripts fetch for a fresh `<main>`; set on live pages.
    live: Option<String>,
    wall: bool,
}

const NAV: &[(&str, &str)] = &[
    ("/ui/wallboard", "nav.wallboard"),
    ("/ui/agents", "nav.agents"),
    ("/ui/calls", "nav.calls"),
    ("/ui/flows", "flows.nav"),
    ("/ui/recordings", "rec.nav"),
    ("/ui/reports", "rep.nav"),
    ("/ui/ha", "ha.nav"),
    ("/ui/users", "users.nav"),
    ("/ui/audit", "users.audit_nav"),
    ("/ui/desk", "desk.nav"),
];

impl<'a> Layout<'a> {
    pub fn new(reader: &'a Reader, path: &'static str, title: &'static str) -> Layout<'a> {
        Layout {
            reader,
            path,
            title,
            live: None,
            wall: false,
        }
    }

    /// A page kept up to date from the event feed: `part` is fetched again on each event.
    pub fn live(mut self, part: String) -> Self {
        self.live = Some(part);
        self
    }

    /// The wall display: no navigation, large type, high contrast.
    pub fn wall(mut self, wall: bool) -> Self {
        self.wall = wall;
        self
    }

    pub fn render(&self, main: &str) -> String {
        let l = self.reader.lang;
        let mut head = String::new();
        if let Some(csrf) = &self.reader.csrf {
            head.push_str(&format!(
                "<meta name=\"csrf-token\" content=\"{}\">",
                escape(csrf)
            ));
        }
        let mut nav = String::new();
        for &(path, key) in NAV {
            if !self.reader.may_open(path) {
                continue;
            }
            let current = if path == self.path {
                " aria-current=\"page\""
            } else {
                ""
            };
            nav.push_str(&format!(
                "<a href=\"{path}\"{current}>{}</a>",
                escape(l.t(key))
            ));
        }
        let langs = [(Lang::Fr, "Français"), (Lang::En, "English")]
            .iter()
            .map(|(lang, name)| {
                let pressed = if *lang == l { "true" } else { "false" };
                format!(
                    "<button type=\"button\" data-lang=\"{c}\" lang=\"{c}\" \
                     aria-pressed=\"{pressed}\">{name}</button>",
                    c = lang.code()
                )
            })
            .collect::<String>();
        let live = match &self.live {
            Some(part) => format!(" data-live=\"{}\"", escape(part)),
            None => String::new(),
        };
        let body = format!(
            "<a class=\"skip\" href=\"#main\">{skip}</a>\
             <header class=\"top\"><span class=\"brand\">{app}</span>\
             <nav aria-label=\"{navlabel}\">{nav}</nav>\
             <div class=\"tools\"><span class=\"who\">{signed} <strong>{user}</strong> ({role})</span>\
             <span role=\"group\" aria-label=\"{langlabel}\" class=\"langs\">{langs}</span>\
             <button type=\"button\" id=\"logout\">{logout}</button></div></header>\
             <main id=\"main\"{live}>{main}</main>\
             <footer><p id=\"status\" role=\"status\" aria-live=\"polite\" \
             data-offline=\"{offline}\" data-failed=\"{failed}\" data-updated=\"{updated}\" \
             data-zone=\"{zone}\"></p>\
             </footer>",
            skip = escape(l.t("nav.skip")),
            app = escape(l.t("app.name")),
            navlabel = escape(l.t("nav.label")),
            signed = escape(l.t("user.signed_in")),
            user = escape(&self.reader.who.name),
            role = escape(role_label(l, self.reader.who.role)),
            langlabel = escape(l.t("lang.label")),
            logout = escape(l.t("user.logout")),
            offline = escape(l.t("live.offline")),
            failed = escape(l.t("live.action_failed")),
            updated = escape(l.t("live.updated")),
            zone = self.reader.zone.name(),
        );
        let page = self.path.trim_start_matches("/ui/");
        let page = if self.wall {
            "wall"
        } else if page.is_empty() {
            "home"
        } else {
            page
        };
        document(l, self.title, page, &head, &body)
    }
}

pub fn role_label(l: Lang, role: Role) -> &'static str {
    match role {
        Role::Admin => l.t("role.admin"),
        Role::Supervisor => l.t("role.supervisor"),
        Role::Agent => l.t("role.agent"),
        Role::Auditor => l.t("role.auditor"),
        Role::Metrics => l.t("role.metrics"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_engine_cannot_open_a_tag_or_leave_an_attribute() {
        assert_eq!(
            escape("<img src=x onerror=\"a\">'&"),
            "&lt;img src=x onerror=&quot;a&quot;&gt;&#39;&amp;"
        );
    }
}
