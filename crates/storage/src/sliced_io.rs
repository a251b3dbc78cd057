//! Bulk writes handed to the kernel in slices of at most [`WRITE_SLICE`] bytes.
//!
//! Why: a `write(2)` of several MiB lets the kernel put the new bytes into
//! large page-cache folios, and on the virtual machines Tidemark is measured
//! on (Linux 6.18 under Firecracker, free memory reported back to the host)
//! a large folio is more often memory the host must fault in again: the
//! copy into it then runs at a fraction of memory speed. Measured with the
//! same 1 GiB of files copied into new files on one thread, in alternating
//! pairs (docs/benchmarks.md): 4 MiB writes took a median 4.0 s, 256 KiB
//! writes 2.4 s (faster in 5 of 5 pairs), 64 KiB writes 2.1 s against 3.0 s
//! for 256 KiB (4 of 4); a full backup of a 1.2 GB root 1.6–1.8 s against
//! 3.4–3.8 s unsliced. A system call per 64 KiB costs nothing measurable
//! anywhere else, so every bulk write of the storage engine and of backups
//! and restores goes through here.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

/// The most bytes one write system call is given.
pub const WRITE_SLICE: usize = 64 << 10;

/// `FileExt::write_all_at`, slice by slice.
pub fn write_all_at(file: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    let mut at = offset;
    for slice in data.chunks(WRITE_SLICE) {
        file.write_all_at(slice, at)?;
        at += slice.len() as u64;
    }
    Ok(())
}

/// `Write::write_all`, slice by slice.
pub fn write_all(w: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    data.chunks(WRITE_SLICE)
        .try_for_each(|slice| w.write_all(slice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn sliced_writes_put_every_byte_where_one_write_would() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3 * WRITE_SLICE + 17).map(|i| (i % 251) as u8).collect();
        let mut f = File::create(&path).expect("create");
        write_all(&mut f, &data[..10]).expect("write");
        write_all_at(&f, &data[10..], 10).expect("write at");
        let mut back = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut back))
            .expect("read");
        assert_eq!(back, data);
    }
}
