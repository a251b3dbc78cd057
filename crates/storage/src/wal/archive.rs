//! The WAL as a log backup ships it, and as point-in-time restore puts it back.
//!
//! A [`LogRun`] is a run of whole, durable WAL records with consecutive
//! sequence numbers, in a self-checking form of its own:
//!
//! ```text
//! RUN_MAGIC "TMLOGRUN" | major u16 | minor u16 | first_seq u64 | last_seq u64
//!   | crc32c of the previous 28 bytes u32
//! records, byte for byte as in a WAL segment (each with its own CRC-32C)
//! ```
//!
//! [`LogReader`] takes runs from a live database: only records the WAL holds
//! durably (it fsyncs first when commits are not synced), in order, a run at a
//! time of a bounded size. While a log backup runs, WAL segments are not
//! recycled before it has shipped them ([`crate::Database::set_log_archived`]).
//! [`LogSegmentWriter`] writes shipped records back as a WAL segment of a
//! restored root, which recovery then replays like any other.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    RECORD_HEADER, SEGMENT_HEADER, list_segments, read_record, record, segment_header,
    segment_path, truncate_after,
};
use crate::codec::{FORMAT_MAJOR, FORMAT_MINOR};
use crate::db::Inner;
use crate::error::{IoContext, Result, StorageError};
use crate::fsutil;
use crate::root::WAL_DIR;

const RUN_MAGIC: &[u8; 8] = b"TMLOGRUN";
const RUN_HEADER: usize = 8 + 2 + 2 + 8 + 8 + 4;

/// A run of consecutive, whole WAL records (see the module documentation).
#[derive(Debug, Clone)]
pub struct LogRun {
    bytes: Vec<u8>,
    first_seq: u64,
    last_seq: u64,
    last_commit_micros: Option<i64>,
}

/// One record of a [`LogRun`].
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    pub seq: u64,
    /// When it was committed (microseconds since the Unix epoch); None for
    /// records written before commit times were recorded.
    pub commit_micros: Option<i64>,
    /// The record as the WAL holds it.
    bytes: &'a [u8],
}

impl LogRun {
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    pub fn last_commit_micros(&self) -> Option<i64> {
        self.last_commit_micros
    }
    /// The run in its stored form (what [`LogRun::decode`] reads back).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks and reads a stored run; `name` (the object's) goes into errors.
    pub fn decode(bytes: Vec<u8>, name: &str) -> Result<LogRun> {
        let bad = |reason: String| StorageError::corrupted(PathBuf::from(name), reason);
        let Some(h) = bytes.get(..RUN_HEADER) else {
            return Err(bad(format!(
                "{} bytes is too short for a log run",
                bytes.len()
            )));
        };
        let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
        if &h[..8] != RUN_MAGIC || crc32c::crc32c(&h[..28]) != crc {
            return Err(bad("not a log run, or its header is damaged".into()));
        }
        let major = u16::from_le_bytes([h[8], h[9]]);
        if major != FORMAT_MAJOR {
            return Err(bad(format!(
                "log run of format {major}, this server reads {FORMAT_MAJOR}"
            )));
        }
        let first_seq = u64::from_le_bytes(h[12..20].try_into().unwrap_or_default());
        let last_seq = u64::from_le_bytes(h[20..28].try_into().unwrap_or_default());
        let mut run = LogRun {
            bytes: Vec::new(),
            first_seq,
            last_seq: 0,
            last_commit_micros: None,
        };
        let mut pos = RUN_HEADER;
        let mut expect = first_seq;
        while pos < bytes.len() {
            let Some((seq, payload, end)) = read_record(&bytes, pos) else {
                return Err(bad(format!(
                    "the record at byte {pos} (commit {expect}) fails its checksum"
                )));
            };
            if seq != expect {
                return Err(bad(format!(
                    "commit {seq} at byte {pos} where commit {expect} belongs"
                )));
            }
            run.last_commit_micros = record::commit_time(payload);
            run.last_seq = seq;
            expect += 1;
            pos = end;
        }
        if expect == first_seq || run.last_seq != last_seq {
            return Err(bad(format!(
                "the run should hold commits {first_seq} to {last_seq}, it holds {} to {}",
                first_seq,
                expect.saturating_sub(1)
            )));
        }
        run.bytes = bytes;
        Ok(run)
    }

    /// The records, in order.
    pub fn records(&self) -> impl Iterator<Item = LogRecord<'_>> {
        let mut pos = RUN_HEADER;
        std::iter::from_fn(move || {
            let (seq, payload, end) = read_record(&self.bytes, pos)?;
            let bytes = &self.bytes[pos..end];
            pos = end;
            Some(LogRecord {
                seq,
                commit_micros: record::commit_time(payload),
                bytes,
            })
        })
    }

    /// The run being built from records `first_seq`, ... (the header is
    /// written by `seal`).
    fn start(first_seq: u64) -> LogRun {
        LogRun {
            bytes: vec![0; RUN_HEADER],
            first_seq,
            last_seq: first_seq.saturating_sub(1),
            last_commit_micros: None,
        }
    }

    fn push(&mut self, record: &ReadRecord, record_bytes: &[u8]) {
        self.last_commit_micros = record.commit_micros;
        self.last_seq = record.seq;
        self.bytes.extend_from_slice(record_bytes);
    }

    fn records_len(&self) -> usize {
        self.bytes.len() - RUN_HEADER
    }

    fn seal(mut self) -> LogRun {
        let mut h = Vec::with_capacity(RUN_HEADER);
        h.extend_from_slice(RUN_MAGIC);
        h.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
        h.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
        h.extend_from_slice(&self.first_seq.to_le_bytes());
        h.extend_from_slice(&self.last_seq.to_le_bytes());
        let crc = crc32c::crc32c(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        self.bytes[..RUN_HEADER].copy_from_slice(&h);
        self
    }
}

/// Where a [`LogReader`] is: the segment holding its next record.
#[derive(Debug)]
struct SegmentCursor {
    path: PathBuf,
    file: BufReader<File>,
    /// Where the next record starts.
    offset: u64,
}

/// Reads the durable WAL of a live database as [`LogRun`]s, in order (see
/// [`crate::Database::log_reader`]). Blocking: async callers run it off their
/// runtime.
#[derive(Debug)]
pub struct LogReader {
    inner: Arc<Inner>,
    next_seq: u64,
    cursor: Option<SegmentCursor>,
}

impl LogReader {
    pub(crate) fn new(inner: Arc<Inner>, after: u64) -> LogReader {
        LogReader {
            inner,
            next_seq: after + 1,
            cursor: None,
        }
    }

    /// The commit the next run starts with.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether commits past the last one read exist (durable or about to be).
    pub fn has_more(&self) -> bool {
        self.inner.group.written_seq() >= self.next_seq
    }

    /// After a [`StorageError::LogGap`]: goes on from the oldest commit the
    /// WAL still holds; returns it.
    pub fn skip_to_oldest(&mut self) -> Result<u64> {
        let mut segments = list_segments(&self.wal_dir())?;
        segments.sort();
        if let Some((first, _)) = segments.first() {
            self.next_seq = self.next_seq.max(*first);
        }
        self.cursor = None;
        Ok(self.next_seq)
    }

    fn wal_dir(&self) -> PathBuf {
        self.inner.root.path.join(WAL_DIR)
    }

    /// The next durable records, about `max_bytes` of them (at least one
    /// whole record); None when every durable commit has been read.
    pub fn read(&mut self, max_bytes: usize) -> Result<Option<LogRun>> {
        let target = self.inner.group.written_seq();
        if target < self.next_seq {
            return Ok(None);
        }
        // Only what a crash cannot take back leaves the machine.
        self.inner.group.wait_durable(target)?;
        // What the cursor buffered before may hold a record still being
        // written then: read the segment afresh from here.
        if let Some(c) = self.cursor.as_mut() {
            c.file.seek(SeekFrom::Start(c.offset)).at(&c.path)?;
        }
        let mut run = LogRun::start(self.next_seq);
        let mut record = Vec::new();
        let wal_dir = self.wal_dir();
        while self.next_seq <= target && (run.records_len() == 0 || run.records_len() < max_bytes) {
            let cursor = match self.cursor.as_mut() {
                Some(c) => c,
                None => self.cursor.insert(self.locate()?),
            };
            match read_record_from(cursor, &mut record)? {
                Some(r) if r.seq < self.next_seq => {}
                Some(r) if r.seq == self.next_seq => {
                    run.push(&r, &record);
                    self.next_seq += 1;
                }
                Some(r) => {
                    return Err(StorageError::corrupted(
                        &cursor.path,
                        format!(
                            "commit {} at byte {} where commit {} belongs",
                            r.seq, cursor.offset, self.next_seq
                        ),
                    ));
                }
                // This segment ends here: the next record opens the next one.
                None => {
                    let next = segment_path(&wal_dir, self.next_seq);
                    if !next.exists() {
                        return Err(StorageError::corrupted(
                            &cursor.path,
                            format!(
                                "commit {} is durable but neither this segment nor {} holds it",
                                self.next_seq,
                                next.display()
                            ),
                        ));
                    }
                    self.cursor = Some(open_segment(&next, self.next_seq)?);
                }
            }
        }
        Ok(Some(run.seal()))
    }

    /// Opens the segment that holds `next_seq`, at its first record.
    fn locate(&self) -> Result<SegmentCursor> {
        let mut segments = list_segments(&self.wal_dir())?;
        segments.sort();
        match segments
            .iter()
            .rev()
            .find(|(first, _)| *first <= self.next_seq)
        {
            Some((first, path)) => open_segment(path, *first),
            None => Err(StorageError::LogGap {
                wanted: self.next_seq,
                oldest: segments.first().map_or(self.next_seq, |s| s.0),
            }),
        }
    }
}

fn open_segment(path: &Path, first_seq: u64) -> Result<SegmentCursor> {
    let mut file = BufReader::with_capacity(1 << 20, File::open(path).at(path)?);
    let mut header = [0u8; SEGMENT_HEADER];
    file.read_exact(&mut header).at(path)?;
    if header[..] != segment_header(first_seq)[..] {
        return Err(StorageError::corrupted(path, "bad WAL segment header"));
    }
    Ok(SegmentCursor {
        path: path.to_path_buf(),
        file,
        offset: SEGMENT_HEADER as u64,
    })
}

/// What [`read_record_from`] found.
struct ReadRecord {
    seq: u64,
    commit_micros: Option<i64>,
}

/// Reads the whole record at the cursor into `out` (checking it); None (the
/// cursor staying put) where no complete record is.
fn read_record_from(c: &mut SegmentCursor, out: &mut Vec<u8>) -> Result<Option<ReadRecord>> {
    out.clear();
    out.resize(RECORD_HEADER, 0);
    let complete = match c.file.read_exact(out) {
        Ok(()) => {
            let len = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
            out.resize(RECORD_HEADER + len.min(super::MAX_RECORD), 0);
            match c.file.read_exact(&mut out[RECORD_HEADER..]) {
                Ok(()) => read_record(out, 0).map(|(seq, payload, end)| {
                    let commit_micros = record::commit_time(payload);
                    (ReadRecord { seq, commit_micros }, end)
                }),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
                Err(e) => return Err(StorageError::io(&c.path, e)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(StorageError::io(&c.path, e)),
    };
    match complete {
        Some((found, end)) => {
            c.offset += end as u64;
            Ok(Some(found))
        }
        None => {
            c.file.seek(SeekFrom::Start(c.offset)).at(&c.path)?;
            Ok(None)
        }
    }
}

/// Writes shipped records into the WAL of a restored root as one new segment,
/// for recovery to replay at the next open.
#[derive(Debug)]
pub struct LogSegmentWriter {
    path: PathBuf,
    file: BufWriter<File>,
    first_seq: u64,
    next_seq: u64,
}

impl LogSegmentWriter {
    /// Starts the segment for the records after commit `after` in `root`,
    /// whose tables and WAL must end at `after` (a closed root restored to a
    /// backup's cut): anything the WAL holds past it is cut first.
    pub fn create(root: &Path, after: u64) -> Result<LogSegmentWriter> {
        let dir = root.join(WAL_DIR);
        let (newest, _) = truncate_after(&dir, after)?;
        if newest.is_some_and(|n| n != after) {
            return Err(StorageError::InvalidState(format!(
                "the WAL of {} ends at commit {}, not at {after}",
                root.display(),
                newest.unwrap_or(0)
            )));
        }
        let path = segment_path(&dir, after + 1);
        let mut file = BufWriter::with_capacity(
            1 << 20,
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&path)
                .at(&path)?,
        );
        file.write_all(&segment_header(after + 1)).at(&path)?;
        Ok(LogSegmentWriter {
            path,
            file,
            first_seq: after + 1,
            next_seq: after + 1,
        })
    }

    /// The commit the next record must be.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends `r`, which must be the next commit.
    pub fn append(&mut self, r: &LogRecord<'_>) -> Result<()> {
        if r.seq != self.next_seq {
            return Err(StorageError::InvalidState(format!(
                "commit {} given where commit {} comes next",
                r.seq, self.next_seq
            )));
        }
        crate::sliced_io::write_all(&mut self.file, r.bytes).at(&self.path)?;
        self.next_seq += 1;
        Ok(())
    }

    /// Makes the segment durable; the number of records written. A segment
    /// without records is removed.
    pub fn finish(self) -> Result<u64> {
        let path = self.path.clone();
        let file = self
            .file
            .into_inner()
            .map_err(|e| StorageError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| StorageError::sync(&path, e))?;
        drop(file);
        if self.next_seq == self.first_seq {
            fsutil::remove_path(&path)?;
        }
        if let Some(dir) = path.parent() {
            fsutil::sync_dir(dir)?;
        }
        Ok(self.next_seq - self.first_seq)
    }
}
