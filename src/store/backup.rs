//! Backups: a consistent snapshot of every record, streamed, and its
//! restore into a new data directory, in bounded memory both ways.
//!
//! Both engines write the same backup file, in sled's key/value layout, so
//! a backup of either restores into either: that is how `tierd
//! migrate-store` moves a programme between them.
//!
//! A backup file is `TIERDBK1`, the data format (u32 BE), every key/value
//! pair length-prefixed (u32 BE), and a SHA-256 of all that. Restore reads
//! the file twice: once to check it whole (checksum, format, structure),
//! then to write it in batches, so a damaged file writes nothing. A backup
//! of an older data format restores as it is and is migrated when the
//! restored directory is first opened.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::Path,
};

use sha2::{Digest, Sha256};

use super::{FORMAT_VERSION, Location, StoreError, migrate, writer::SledWriter};

/// The first bytes of every backup file.
const MAGIC: &[u8; 8] = b"TIERDBK1";

/// Records written to sled per batch while restoring.
const RESTORE_BATCH: usize = 10_000;

/// A backup file that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Not a tierd backup, cut short, or altered.
    #[error("not a complete tierd backup: {0}")]
    Damaged(&'static str),
    /// Made by a tierd with a data format this one cannot read.
    #[error("the backup has data format {found}; this tierd restores formats 2 to {supported}")]
    Format {
        /// The backup's format.
        found: u32,
        /// This build's format.
        supported: u32,
    },
    /// Restoring into a store that already holds data.
    #[error("{0} already holds tierd data; restore into a new directory or an empty database")]
    NotEmpty(String),
    /// A backup of an older format, for a store that takes only the current
    /// one.
    #[error(
        "the backup has data format {found}; a database takes format {supported} only: restore it into a sled directory first (which migrates it), then move it with `tierd migrate-store`"
    )]
    OlderFormat {
        /// The backup's format.
        found: u32,
        /// This build's format.
        supported: u32,
    },
    /// Reading the backup file failed.
    #[error("reading the backup: {0}")]
    Io(#[from] io::Error),
    /// The store failed while restoring.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A backup file being written: the header, then records, then the
/// SHA-256 of all that ([`BackupFile::finish`]). Both engines write theirs
/// with it, in sled's key/value layout ([`super::keys`]).
pub struct BackupFile<W: Write> {
    out: BufWriter<W>,
    hash: Sha256,
    written: u64,
}

impl<W: Write> BackupFile<W> {
    /// Starts a backup of the current format in `out`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn start(out: W) -> io::Result<Self> {
        let mut file = Self {
            out: BufWriter::new(out),
            hash: Sha256::new(),
            written: 0,
        };
        file.put(MAGIC)?;
        file.put(&FORMAT_VERSION.to_be_bytes())?;
        Ok(file)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn part(&mut self, part: &[u8]) -> io::Result<()> {
        // Keys and values are far below 4 GiB.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.put(&len.to_be_bytes())?;
        self.put(part)
    }

    /// Adds one record.
    ///
    /// # Errors
    /// When writing fails.
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.part(key)?;
        self.part(value)
    }

    /// Closes the file with its checksum; returns the bytes written.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish(mut self) -> io::Result<u64> {
        let digest = std::mem::take(&mut self.hash).finalize();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok(self.written + digest.len() as u64)
    }
}

impl SledWriter {
    /// Writes a consistent snapshot of every record to `out` as a backup
    /// file; returns the bytes written. Taken on the writer thread, so no
    /// write interleaves; memory stays bounded whatever the data size.
    ///
    /// # Errors
    /// On a storage or write failure.
    pub fn snapshot(&mut self, out: impl Write) -> Result<u64, StoreError> {
        // The round's earlier commits belong in it.
        self.apply_pending()?;
        let mut file = BackupFile::start(out)?;
        for item in self.tree.iter() {
            let (key, value) = item?;
            file.record(&key, &value)?;
        }
        Ok(file.finish()?)
    }
}

/// Restores the backup file `backup` into the new store at `location` (a
/// sled directory, or a database whose tierd tables are empty); returns
/// the records written.
///
/// # Errors
/// A damaged or foreign backup, a store that already has data, or a
/// storage failure. Nothing is written unless the whole backup checks out.
pub fn restore(backup: &Path, location: &Location) -> Result<usize, BackupError> {
    let records = check(backup)?;
    let reader = Records::open(backup)?;
    match location {
        Location::Sled(dir) => restore_into_sled(reader, dir)?,
        Location::Postgres(url) => super::postgres::restore(reader, url)?,
    }
    Ok(records)
}

fn restore_into_sled(mut reader: Records, dir: &Path) -> Result<(), BackupError> {
    let db = super::open_db(dir)?;
    let tree = db.open_tree("tierd").map_err(StoreError::from)?;
    if !tree.is_empty() {
        return Err(BackupError::NotEmpty(dir.display().to_string()));
    }
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    while let Some((key, value)) = reader.next_record()? {
        batch.insert(key, value);
        in_batch += 1;
        if in_batch == RESTORE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(StoreError::from)?;
            in_batch = 0;
        }
    }
    tree.apply_batch(batch).map_err(StoreError::from)?;
    // A database's backup has no due moments (its members are due at once),
    // and a sled backup before format 7 keeps them under keys of their own.
    super::migrate::due_in_members(&tree)?;
    db.flush().map_err(StoreError::from)?;
    File::open(dir.join("db"))?.sync_all()?;
    Ok(())
}

/// Checks the whole file (checksum, header, every record's framing)
/// without keeping it; returns how many records it holds.
fn check(backup: &Path) -> Result<usize, BackupError> {
    let (mut reader, body_len) = open_body(backup)?;
    let mut hash = Sha256::new();
    io::copy(&mut (&mut reader).take(body_len), &mut HashSink(&mut hash))?;
    let mut digest = [0_u8; 32];
    reader.read_exact(&mut digest)?;
    if hash.finalize().as_slice() != digest {
        return Err(BackupError::Damaged("checksum mismatch"));
    }
    let mut records = Records::open(backup)?;
    let mut count = 0;
    while records.next_record()?.is_some() {
        count += 1;
    }
    Ok(count)
}

/// Opens a backup file; returns it with the length of what precedes its
/// closing SHA-256.
fn open_body(backup: &Path) -> Result<(BufReader<File>, u64), BackupError> {
    let file = File::open(backup)?;
    let body_len = file
        .metadata()?
        .len()
        .checked_sub(32)
        .ok_or(BackupError::Damaged("too short"))?;
    Ok((BufReader::new(file), body_len))
}

/// Feeds what is copied into it to a hash.
struct HashSink<'a>(&'a mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A record of a backup: its key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The records of a backup file, read one by one after its header.
pub struct Records {
    reader: io::Take<BufReader<File>>,
    /// The data format the records are in.
    pub format: u32,
}

impl Records {
    /// Opens `backup` and reads its header.
    fn open(backup: &Path) -> Result<Self, BackupError> {
        let (reader, body_len) = open_body(backup)?;
        let mut reader = reader.take(body_len);
        let mut magic = [0_u8; 8];
        read_exactly(&mut reader, &mut magic, "no tierd backup header")?;
        if &magic != MAGIC {
            return Err(BackupError::Damaged("no tierd backup header"));
        }
        let mut format = [0_u8; 4];
        read_exactly(&mut reader, &mut format, "no format")?;
        let found = u32::from_be_bytes(format);
        if !migrate::can_read(found) {
            return Err(BackupError::Format {
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Self {
            reader,
            format: found,
        })
    }

    /// The next key and value, or `None` at the end.
    ///
    /// # Errors
    /// A file cut short, or a read failure.
    pub fn next_record(&mut self) -> Result<Option<KeyValue>, BackupError> {
        if self.reader.limit() == 0 {
            return Ok(None);
        }
        let key = self.part()?;
        let value = self.part()?;
        Ok(Some((key, value)))
    }

    fn part(&mut self) -> Result<Vec<u8>, BackupError> {
        let mut len = [0_u8; 4];
        read_exactly(&mut self.reader, &mut len, "cut short")?;
        let len = u64::from(u32::from_be_bytes(len));
        if len > self.reader.limit() {
            return Err(BackupError::Damaged("cut short"));
        }
        let mut part = Vec::new();
        (&mut self.reader).take(len).read_to_end(&mut part)?;
        Ok(part)
    }
}

/// Fills `buffer`, or reports the file as damaged with `why`.
fn read_exactly(
    reader: &mut impl Read,
    buffer: &mut [u8],
    why: &'static str,
) -> Result<(), BackupError> {
    reader.read_exact(buffer).map_err(|err| match err.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Damaged(why),
        _ => BackupError::Io(err),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_backup_is_refused_before_anything_is_written() {
        let dir = tempfile::TempDir::new().expect("temp dir");
        let file = dir.path().join("backup");
        let mut backup = MAGIC.to_vec();
        backup.extend(FORMAT_VERSION.to_be_bytes());
        backup.extend(3_u32.to_be_bytes());
        backup.extend(b"key");
        backup.extend(Sha256::digest(&backup));
        std::fs::write(&file, &backup).expect("write");
        let data = dir.path().join("data");
        let location = Location::Sled(data.clone());
        assert!(matches!(
            restore(&file, &location),
            Err(BackupError::Damaged("cut short"))
        ));
        let last = backup.len() - 1;
        backup[last] ^= 1;
        std::fs::write(&file, &backup).expect("write");
        assert!(matches!(
            restore(&file, &location),
            Err(BackupError::Damaged("checksum mismatch"))
        ));
        assert!(!data.join("db").exists(), "nothing written");
    }
}
