//! The server side of a recording copy: one piece of a file of the recordings directory.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{plain_wav_name, Chunk, MAX_CHUNK};

/// Up to `max` bytes (at most `MAX_CHUNK`) of `dir/file` from `offset`. An offset at or
/// past the end gives an empty last piece, so that a client whose partial copy is longer
/// than the file learns the real size and starts over.
pub(crate) async fn read_chunk(
    dir: &Path,
    file: &str,
    offset: u64,
    max: u32,
) -> Result<Chunk, String> {
    let file = plain_wav_name(file)?;
    let path = dir.join(file);
    let err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => format!("recording {file} is not on this node"),
        _ => format!("recording {file}: {e}"),
    };
    let mut f = tokio::fs::File::open(&path).await.map_err(err)?;
    let total = f.metadata().await.map_err(err)?.len();
    if offset >= total {
        return Ok(Chunk {
            total,
            eof: true,
            bytes: Vec::new(),
        });
    }
    let want = u64::from(max.clamp(1, MAX_CHUNK)).min(total - offset);
    f.seek(SeekFrom::Start(offset)).await.map_err(err)?;
    let mut bytes = Vec::with_capacity(want as usize);
    f.take(want).read_to_end(&mut bytes).await.map_err(err)?;
    Ok(Chunk {
        total,
        eof: offset + bytes.len() as u64 >= total,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_pieces_and_refuses_paths_and_missing_files() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("c1.wav"), b"0123456789").expect("write");
        std::fs::write(dir.path().join("secret.txt"), b"x").expect("write");
        let c = read_chunk(dir.path(), "c1.wav", 0, 4).await.expect("first");
        assert_eq!(
            (c.total, c.eof, c.bytes.as_slice()),
            (10, false, &b"0123"[..])
        );
        let c = read_chunk(dir.path(), "c1.wav", 8, 4).await.expect("last");
        assert_eq!((c.eof, c.bytes.as_slice()), (true, &b"89"[..]));
        let c = read_chunk(dir.path(), "c1.wav", 12, 4).await.expect("past");
        assert_eq!((c.total, c.eof, c.bytes.len()), (10, true, 0));
        let missing = read_chunk(dir.path(), "c2.wav", 0, 4).await;
        assert_eq!(missing, Err("recording c2.wav is not on this node".into()));
        for bad in ["secret.txt", "../c1.wav", "sub/c1.wav"] {
            let e = read_chunk(dir.path(), bad, 0, 4).await.expect_err(bad);
            assert!(e.contains("not a recording file name"), "{e}");
        }
    }
}
