//! The records of an export bundle (proto/stockpile/v1/export.proto).
//!
//! Framing (the magic line and varint length prefixes) is done by the reader and writer
//! in `stockpile-ledger`; this module turns one record body into bytes and back.

use crate::wire;
use bytes::Bytes;
use prost::Message as _;

/// The ASCII line every export starts with.
pub const EXPORT_MAGIC: &[u8; 20] = b"stockpile-export/v1\n";

/// One record of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportRecord {
    Header {
        origin: String,
    },
    /// A serialized ledger entry, verbatim.
    Entry(Bytes),
    /// A signed checkpoint note, verbatim.
    Checkpoint(Bytes),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportRecordError {
    #[error("export record is not a protobuf stockpile.v1.ExportRecord: {detail}")]
    Malformed { detail: String },
    #[error("export record holds nothing")]
    Empty,
}

pub fn encode_record(record: &ExportRecord) -> Vec<u8> {
    let record = match record {
        ExportRecord::Header { origin } => {
            wire::export_record::Record::Header(wire::ExportHeader {
                origin: origin.clone(),
            })
        }
        ExportRecord::Entry(bytes) => wire::export_record::Record::Entry(bytes.clone()),
        ExportRecord::Checkpoint(bytes) => wire::export_record::Record::Checkpoint(bytes.clone()),
    };
    wire::ExportRecord {
        record: Some(record),
    }
    .encode_to_vec()
}

/// Decodes one record body. When decoding from a `Bytes`, entry and checkpoint bytes are
/// slices of it, not copies.
pub fn decode_record(body: Bytes) -> Result<ExportRecord, ExportRecordError> {
    let record =
        wire::ExportRecord::decode(body).map_err(|error| ExportRecordError::Malformed {
            detail: error.to_string(),
        })?;
    Ok(match record.record.ok_or(ExportRecordError::Empty)? {
        wire::export_record::Record::Header(header) => ExportRecord::Header {
            origin: header.origin,
        },
        wire::export_record::Record::Entry(bytes) => ExportRecord::Entry(bytes),
        wire::export_record::Record::Checkpoint(bytes) => ExportRecord::Checkpoint(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for record in [
            ExportRecord::Header {
                origin: "example.org/ledger".into(),
            },
            ExportRecord::Entry(Bytes::from_static(b"\x08\x01")),
            ExportRecord::Checkpoint(Bytes::from_static(b"origin\n1\nAAAA\n")),
        ] {
            assert_eq!(
                decode_record(Bytes::from(encode_record(&record))),
                Ok(record)
            );
        }
        assert_eq!(decode_record(Bytes::new()), Err(ExportRecordError::Empty));
    }
}
