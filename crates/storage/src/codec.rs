//! Binary encoding shared by every Tidemark metadata file and WAL record.
//!
//! All integers are little-endian. Strings and byte strings are a `u32` length
//! followed by the bytes. A *framed file* is
//!
//! ```text
//! magic [u8; 8] | major u16 | minor u16 | body_len u32 | body | crc32c(u32) of everything before it
//! ```
//!
//! The decoder never panics: every read is bounds-checked and a short or damaged
//! input becomes a [`StorageError::Corrupted`] naming the file.

use std::path::Path;

use crate::error::{Result, StorageError};

/// The storage-format major version. A root written by another major version is refused.
pub const FORMAT_MAJOR: u16 = 1;
/// The storage-format minor version (readers accept any minor of their major).
pub const FORMAT_MINOR: u16 = 0;

const FRAME_HEADER: usize = 8 + 2 + 2 + 4;

#[derive(Debug, Default)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder { buf: Vec::new() }
    }
    pub(crate) fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// A bounds-checked reader over a byte slice. `what` names the input in errors.
#[derive(Debug)]
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a Path,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'a Path) -> Self {
        Decoder { buf, pos: 0, what }
    }

    pub(crate) fn error(&self, reason: impl std::fmt::Display) -> StorageError {
        StorageError::corrupted(self.what, format!("{reason} (at byte {})", self.pos))
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.error(format!(
                "unexpected end of data: needed {n} bytes, {} left",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("invalid boolean byte {b}"))),
        }
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.error("string is not valid UTF-8"))
    }
    /// A length prefix for a list whose elements take at least `min_elem` bytes each;
    /// refuses lengths the remaining input cannot hold, so a damaged count cannot
    /// make us allocate gigabytes.
    pub(crate) fn count(&mut self, min_elem: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(self.error(format!("list length {n} exceeds the data left")));
        }
        Ok(n)
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(crate) fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.error(format!("{} unexpected trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

/// Wraps `body` in a versioned, checksummed frame.
pub(crate) fn frame(magic: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER + body.len() + 4);
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    out.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks magic, version, length and checksum of a framed file; returns the body.
pub(crate) fn unframe<'a>(magic: &[u8; 8], data: &'a [u8], path: &Path) -> Result<&'a [u8]> {
    if data.len() < FRAME_HEADER + 4 {
        return Err(StorageError::corrupted(
            path,
            format!(
                "file is truncated: {} bytes, a header alone is {}",
                data.len(),
                FRAME_HEADER + 4
            ),
        ));
    }
    if &data[..8] != magic {
        return Err(StorageError::corrupted(
            path,
            format!(
                "wrong file type: magic {:?}, expected {:?}",
                String::from_utf8_lossy(&data[..8]),
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let major = u16::from_le_bytes([data[8], data[9]]);
    if major != FORMAT_MAJOR {
        return Err(StorageError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: major,
            supported: FORMAT_MAJOR,
        });
    }
    let body_len = u32::from_le_bytes([data[12], data[13], data[14], data[15]]) as usize;
    let expected = FRAME_HEADER + body_len + 4;
    if data.len() != expected {
        return Err(StorageError::corrupted(
            path,
            format!("file is {} bytes, its header says {expected}", data.len()),
        ));
    }
    let stored = u32::from_le_bytes([
        data[expected - 4],
        data[expected - 3],
        data[expected - 2],
        data[expected - 1],
    ]);
    let actual = crc32c::crc32c(&data[..expected - 4]);
    if stored != actual {
        return Err(StorageError::corrupted(
            path,
            format!("checksum mismatch: stored {stored:08x}, computed {actual:08x}"),
        ));
    }
    Ok(&data[FRAME_HEADER..FRAME_HEADER + body_len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip_and_every_damage_is_detected() {
        let body = b"hello tidemark".to_vec();
        let f = frame(b"TMTEST01", &body);
        let p = Path::new("x");
        assert_eq!(unframe(b"TMTEST01", &f, p).expect("valid frame"), &body[..]);
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(
                unframe(b"TMTEST01", &g, p).is_err(),
                "flip at {i} undetected"
            );
        }
        for n in 0..f.len() {
            assert!(
                unframe(b"TMTEST01", &f[..n], p).is_err(),
                "truncation to {n} undetected"
            );
        }
    }

    #[test]
    fn other_major_version_is_refused_by_name() {
        let mut f = frame(b"TMTEST01", b"x");
        f[8] = 9;
        let n = f.len();
        let crc = crc32c::crc32c(&f[..n - 4]);
        f[n - 4..].copy_from_slice(&crc.to_le_bytes());
        let e = unframe(b"TMTEST01", &f, Path::new("x")).expect_err("must refuse");
        assert!(e.to_string().contains("version 9.x"), "{e}");
    }

    #[test]
    fn decoder_refuses_oversized_counts() {
        let mut e = Encoder::new();
        e.u32(u32::MAX);
        let b = e.into_inner();
        let mut d = Decoder::new(&b, Path::new("x"));
        assert!(d.count(8).is_err());
    }
}
