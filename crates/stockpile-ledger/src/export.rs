//! Export bundles: one self-contained file an inspector verifies offline.
//!
//! Layout (docs/export-format.md): the 20 bytes `stockpile-export/v1\n`, then records,
//! each a protobuf varint length followed by a `stockpile.v1.ExportRecord`. The first
//! record is the header (origin); entries follow in index order, each checkpoint right
//! after the entry that completes its tree size. Reading is streaming: memory does not
//! grow with the file.

use bytes::Bytes;
use std::io::{self, BufRead, BufReader, Read, Write};
use stockpile_core::limits::EXPORT_RECORD_BYTES_MAX;
use stockpile_proto::export_codec::{EXPORT_MAGIC, ExportRecord, decode_record, encode_record};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read the export: {0}")]
    Io(#[from] io::Error),
    #[error(
        "not a stockpile export: the file does not start with {:?}",
        String::from_utf8_lossy(EXPORT_MAGIC)
    )]
    BadMagic,
    #[error("export has no header record")]
    MissingHeader,
    #[error("record {record_number} at byte {offset}: {problem}")]
    BadRecord {
        record_number: u64,
        offset: u64,
        problem: String,
    },
    #[error("export ends in the middle of record {record_number} at byte {offset}")]
    Truncated { record_number: u64, offset: u64 },
}

/// Writes an export record by record.
pub struct ExportWriter<W: Write> {
    out: W,
    entries_written: u64,
    checkpoints_written: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Writes the magic line and the header.
    pub fn new(mut out: W, origin: &str) -> io::Result<Self> {
        out.write_all(EXPORT_MAGIC)?;
        let mut writer = ExportWriter {
            out,
            entries_written: 0,
            checkpoints_written: 0,
        };
        writer.write_record(&ExportRecord::Header {
            origin: origin.to_string(),
        })?;
        Ok(writer)
    }

    pub fn write_entry(&mut self, entry_bytes: &[u8]) -> io::Result<()> {
        self.entries_written += 1;
        self.write_record(&ExportRecord::Entry(Bytes::copy_from_slice(entry_bytes)))
    }

    pub fn write_checkpoint(&mut self, note: &[u8]) -> io::Result<()> {
        self.checkpoints_written += 1;
        self.write_record(&ExportRecord::Checkpoint(Bytes::copy_from_slice(note)))
    }

    /// Writes an already built record verbatim (used to copy or corrupt exports in tests).
    pub fn write_record(&mut self, record: &ExportRecord) -> io::Result<()> {
        let body = encode_record(record);
        let mut prefix = [0u8; 10];
        let prefix_len = encode_varint(body.len() as u64, &mut prefix);
        self.out.write_all(&prefix[..prefix_len])?;
        self.out.write_all(&body)
    }

    pub fn entries_written(&self) -> u64 {
        self.entries_written
    }

    pub fn checkpoints_written(&self) -> u64 {
        self.checkpoints_written
    }

    /// Flushes and hands back the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads an export record by record.
pub struct ExportReader<R: Read> {
    input: BufReader<R>,
    origin: String,
    offset: u64,
    records_read: u64,
}

impl<R: Read> ExportReader<R> {
    /// Reads the magic line and the header.
    pub fn open(input: R) -> Result<Self, ExportError> {
        let mut input = BufReader::with_capacity(1 << 20, input);
        let mut magic = [0u8; EXPORT_MAGIC.len()];
        input
            .read_exact(&mut magic)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => ExportError::BadMagic,
                _ => ExportError::Io(error),
            })?;
        if &magic != EXPORT_MAGIC {
            return Err(ExportError::BadMagic);
        }
        let mut reader = ExportReader {
            input,
            origin: String::new(),
            offset: EXPORT_MAGIC.len() as u64,
            records_read: 0,
        };
        match reader.next_record()? {
            Some(ExportRecord::Header { origin }) => {
                reader.origin = origin;
                Ok(reader)
            }
            _ => Err(ExportError::MissingHeader),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Bytes consumed so far (for progress bars).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<ExportRecord>, ExportError> {
        let record_number = self.records_read;
        let start = self.offset;
        let Some(length) = self.read_length(record_number, start)? else {
            return Ok(None);
        };
        if length > EXPORT_RECORD_BYTES_MAX as u64 {
            return Err(ExportError::BadRecord {
                record_number,
                offset: start,
                problem: format!(
                    "record length {length} exceeds the limit of {EXPORT_RECORD_BYTES_MAX} bytes"
                ),
            });
        }
        let mut body = vec![0u8; length as usize];
        self.input
            .read_exact(&mut body)
            .map_err(|error| match error.kind() {
                io::ErrorKind::UnexpectedEof => ExportError::Truncated {
                    record_number,
                    offset: start,
                },
                _ => ExportError::Io(error),
            })?;
        self.offset += length;
        self.records_read += 1;
        let record = decode_record(Bytes::from(body)).map_err(|error| ExportError::BadRecord {
            record_number,
            offset: start,
            problem: error.to_string(),
        })?;
        if record_number > 0 && matches!(record, ExportRecord::Header { .. }) {
            return Err(ExportError::BadRecord {
                record_number,
                offset: start,
                problem: "a second header".into(),
            });
        }
        Ok(Some(record))
    }

    /// Reads a varint length prefix; `None` at a clean end of file.
    fn read_length(&mut self, record_number: u64, start: u64) -> Result<Option<u64>, ExportError> {
        let mut value: u64 = 0;
        for byte_number in 0..10u32 {
            let buffer = self.input.fill_buf()?;
            let Some(&byte) = buffer.first() else {
                return if byte_number == 0 {
                    Ok(None)
                } else {
                    Err(ExportError::Truncated {
                        record_number,
                        offset: start,
                    })
                };
            };
            self.input.consume(1);
            self.offset += 1;
            value |= u64::from(byte & 0x7f) << (7 * byte_number);
            if byte & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(ExportError::BadRecord {
            record_number,
            offset: start,
            problem: "length prefix longer than 10 bytes".into(),
        })
    }
}

fn encode_varint(mut value: u64, out: &mut [u8; 10]) -> usize {
    let mut len = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out[len] = byte;
            return len + 1;
        }
        out[len] = byte | 0x80;
        len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut writer = ExportWriter::new(Vec::new(), "example.org/l").unwrap();
        writer.write_entry(&[1u8; 300]).unwrap();
        writer
            .write_checkpoint(b"example.org/l\n1\nAAAA\n")
            .unwrap();
        writer.finish().unwrap()
    }

    #[test]
    fn round_trips_records() {
        let bytes = sample();
        let mut reader = ExportReader::open(bytes.as_slice()).unwrap();
        assert_eq!(reader.origin(), "example.org/l");
        assert!(
            matches!(reader.next_record().unwrap(), Some(ExportRecord::Entry(e)) if e.len() == 300)
        );
        assert!(matches!(
            reader.next_record().unwrap(),
            Some(ExportRecord::Checkpoint(_))
        ));
        assert!(reader.next_record().unwrap().is_none());
        assert_eq!(reader.offset(), bytes.len() as u64);
    }

    #[test]
    fn every_truncation_is_an_error_unless_it_falls_between_records() {
        let bytes = sample();
        let mut reader = ExportReader::open(bytes.as_slice()).unwrap();
        let after_header = reader.offset() as usize;
        reader.next_record().unwrap();
        let after_entry = reader.offset() as usize;
        for cut in 0..bytes.len() {
            let result = ExportReader::open(&bytes[..cut]).and_then(|mut reader| {
                while reader.next_record()?.is_some() {}
                Ok(())
            });
            // A cut between records reads cleanly; the verifier catches those with
            // checkpoints. A cut anywhere else is an error, never a short read.
            let between_records = cut == after_header || cut == after_entry;
            assert_eq!(result.is_ok(), between_records, "cut at byte {cut}");
        }
        assert!(matches!(
            ExportReader::open(&b"not an export at all"[..]),
            Err(ExportError::BadMagic)
        ));
    }
}
