use std::f64::consts::PI;
use std::path::Path;

use hound::{SampleFormat, WavSpec, WavWriter};

use super::*;
use crate::media::codec::SAMPLES_PER_FRAME;
use crate::media::g711;

fn write_wav(path: &Path, spec: WavSpec, seconds: f64, frequency: f64) {
    let mut writer = WavWriter::create(path, spec).expect("create wav");
    let frames = (f64::from(spec.sample_rate) * seconds) as usize;
    for n in 0..frames {
        let x = 0.5 * (2.0 * PI * frequency * n as f64 / f64::from(spec.sample_rate)).sin();
        for channel in 0..spec.channels {
            // The second channel in opposite phase at half level: downmix keeps a quarter.
            let v = if channel == 0 { x } else { -x / 2.0 };
            match (spec.sample_format, spec.bits_per_sample) {
                (SampleFormat::Float, _) => writer.write_sample(v as f32),
                (_, 8) => writer.write_sample((v * 127.0) as i8),
                (_, 16) => writer.write_sample((v * 32767.0) as i16),
                (_, 24) => writer.write_sample((v * 8_388_607.0) as i32),
                _ => writer.write_sample((v * 2_147_483_647.0) as i32),
            }
            .expect("write sample");
        }
    }
    writer.finalize().expect("finalize");
}

fn spec(channels: u16, sample_rate: u32, bits: u16, format: SampleFormat) -> WavSpec {
    WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

fn rms(samples: &[i16]) -> f64 {
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    (middle.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / middle.len() as f64).sqrt()
}

#[test]
fn every_pcm_layout_is_normalised_to_8khz_mono() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        spec(1, 8000, 16, SampleFormat::Int),
        spec(1, 8000, 8, SampleFormat::Int),
        spec(2, 44_100, 16, SampleFormat::Int),
        spec(1, 48_000, 24, SampleFormat::Int),
        spec(2, 16_000, 32, SampleFormat::Int),
        spec(1, 22_050, 32, SampleFormat::Float),
        spec(2, 11_025, 8, SampleFormat::Int),
    ];
    for (i, spec) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.wav"));
        write_wav(&path, spec, 0.5, 1000.0);
        let prompt = Prompt::load_wav(&path, "tone").expect("loads");
        assert_eq!(prompt.name(), "tone");
        assert_eq!(prompt.pcm().len(), 4000, "{spec:?}");
        assert_eq!(prompt.duration(), Duration::from_millis(500));
        assert_eq!(prompt.frame_count(), 25);
        let amplitude = if spec.channels == 2 { 0.125 } else { 0.5 };
        let expected = amplitude * 32767.0 / 2f64.sqrt();
        let level = rms(prompt.pcm());
        let tolerance = if spec.bits_per_sample == 8 {
            0.03
        } else {
            0.01
        };
        assert!(
            (level / expected - 1.0).abs() < tolerance,
            "{spec:?}: rms {level}, expected {expected}"
        );
    }
}

#[test]
fn frames_are_preencoded_in_both_laws_and_padded() {
    let pcm: Vec<i16> = (0..200).map(|i| (i * 100) as i16).collect();
    let prompt = Prompt::from_pcm("ramp", pcm.clone());
    assert_eq!(prompt.frame_count(), 2);
    let pcma = prompt.frames(Codec::Pcma);
    let pcmu = prompt.frames(Codec::Pcmu);
    assert_eq!(pcma[0][10], g711::linear_to_alaw(pcm[10]));
    assert_eq!(pcmu[1][39], g711::linear_to_ulaw(pcm[199]));
    assert!(pcma[1][40..].iter().all(|&b| b == g711::ALAW_SILENCE));
    assert!(pcmu[1][40..].iter().all(|&b| b == g711::ULAW_SILENCE));
    assert_eq!(pcma[0].len(), SAMPLES_PER_FRAME);
    // Clones share the frames.
    let clone = prompt.clone();
    assert!(std::ptr::eq(clone.frames(Codec::Pcma), pcma));
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.wav");
    let error = Prompt::load_wav(&missing, "x").expect_err("missing file");
    assert!(matches!(error, PromptError::Unreadable { .. }));
    assert!(error.to_string().contains("missing.wav"));

    let text = dir.path().join("text.wav");
    std::fs::write(&text, "this is not audio at all, just some text").expect("write");
    let error = Prompt::load_wav(&text, "x").expect_err("not a wav");
    assert!(matches!(error, PromptError::NotWav { .. }), "{error}");
    assert!(error.to_string().contains("text.wav"));

    let short = dir.path().join("short.wav");
    std::fs::write(&short, b"RIFF").expect("write");
    let error = Prompt::load_wav(&short, "x").expect_err("cut header");
    assert!(matches!(error, PromptError::NotWav { .. }), "{error:?}");

    let empty = dir.path().join("empty.wav");
    WavWriter::create(&empty, spec(1, 8000, 16, SampleFormat::Int))
        .expect("create")
        .finalize()
        .expect("finalize");
    let error = Prompt::load_wav(&empty, "x").expect_err("no audio");
    assert!(matches!(error, PromptError::Empty { .. }), "{error}");

    // A-law inside a WAV container (format tag 6) is not read.
    let alaw = dir.path().join("alaw.wav");
    std::fs::write(&alaw, alaw_wav_bytes()).expect("write");
    let error = Prompt::load_wav(&alaw, "x").expect_err("unsupported");
    assert!(matches!(error, PromptError::Unsupported { .. }), "{error}");

    // Data cut short of its declared length.
    let cut = dir.path().join("cut.wav");
    write_wav(&cut, spec(1, 8000, 16, SampleFormat::Int), 0.1, 440.0);
    let bytes = std::fs::read(&cut).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).expect("write");
    let error = Prompt::load_wav(&cut, "x").expect_err("truncated");
    assert!(
        matches!(
            error,
            PromptError::Truncated {
                read: 750,
                declared: 800,
                ..
            }
        ),
        "{error}"
    );
}

fn alaw_wav_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(4 + 8 + 18 + 8 + 160u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&18u32.to_le_bytes());
    bytes.extend_from_slice(&6u16.to_le_bytes()); // WAVE_FORMAT_ALAW
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&8u16.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&160u32.to_le_bytes());
    bytes.extend_from_slice(&[0xD5; 160]);
    bytes
}

#[test]
fn store_loads_a_language_tree_and_falls_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let mono = spec(1, 8000, 16, SampleFormat::Int);
    for (language, name) in [
        ("en", "welcome"),
        ("en", "goodbye"),
        ("fr", "welcome"),
        ("en", "menu/main"),
    ] {
        let path = root.join(language).join(format!("{name}.wav"));
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        write_wav(&path, mono, 0.1, 440.0);
    }
    std::fs::write(root.join("fr").join("broken.wav"), "garbage").expect("write");
    std::fs::write(root.join("fr").join("README.txt"), "not a prompt").expect("write");
    std::fs::write(root.join("stray.wav"), "outside any language").expect("write");

    let (store, problems) = PromptStore::load_dir(root).expect("root readable");
    let store = store.with_fallback_language("en");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().contains("broken.wav"));
    assert_eq!(store.languages().collect::<Vec<_>>(), vec!["en", "fr"]);
    assert_eq!(
        store.names("en").collect::<Vec<_>>(),
        vec!["goodbye", "menu/main", "welcome"]
    );
    assert_eq!(store.names("fr").collect::<Vec<_>>(), vec!["welcome"]);
    assert_eq!(store.names("de").count(), 0);
    assert_eq!(store.len(), 4);

    assert_eq!(store.get("fr", "welcome").map(|p| p.frame_count()), Some(5));
    assert!(
        store.get("fr", "goodbye").is_some(),
        "falls back to English"
    );
    assert!(
        store.get("de", "menu/main").is_some(),
        "unknown language falls back too"
    );
    assert!(store.get("fr", "nothing").is_none());
    assert!(PromptStore::new().get("en", "welcome").is_none());

    assert!(matches!(
        PromptStore::load_dir(&root.join("nope")),
        Err(PromptError::Unreadable { .. })
    ));
}
