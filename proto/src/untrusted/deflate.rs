//! Bounded inflation: the compressed parts of outside bytes are inflated
//! here, against one running budget, before Automerge sees the bytes.
//!
//! Automerge 0.12 inflates every DEFLATE-compressed part it meets with
//! `read_to_end` and no limit (`storage/columns/raw_column.rs` for the
//! columns of document and bundle chunks, `storage/chunk.rs` for
//! compressed change chunks), so [`super::MAX_DOC_BYTES`] alone does not
//! bound its memory: DEFLATE reaches about 1,000 times. This walk follows
//! the same layout (verified against automerge 0.12.0's
//! `storage/{chunk,document,columns/raw_column}.rs` and
//! `storage/bundle/storage.rs`):
//!
//! - a chunk: magic `85 6f 4a 83`, 4 checksum bytes, a type byte (0
//!   document, 1 change, 2 compressed change, 3 bundle), a uLEB128 length,
//!   that many bytes of data;
//! - a document: actors (uLEB128 count, each a uLEB128 length and bytes),
//!   heads (uLEB128 count of 32-byte hashes), change-column metadata, then
//!   op-column metadata (each a uLEB128 count of pairs: uLEB128 column
//!   spec, uLEB128 length; bit `0x08` of the spec marks a deflated column),
//!   then the change columns' data, then the op columns' data;
//! - a bundle: dependencies (count of hashes), actors, change-column
//!   metadata and its data, op-column metadata and its data;
//! - a compressed change: its whole data is one deflated part;
//! - a change: never compressed inside (Automerge refuses compressed
//!   columns in a change chunk), so nothing to inflate.
//!
//! Each part is inflated into a fixed buffer and counted, never kept, so
//! this allocates only the decoder's state, whatever the bytes. Where the
//! layout does not parse, Automerge's own parser stops at the same place
//! before inflating anything (its parse is the same and no more lenient),
//! so the walk stops too and leaves the refusal to Automerge.

use std::io::Read;

use super::{MAX_COMPRESSED_PARTS, MAX_INFLATED_BYTES, Refusal};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const HASH_BYTES: u64 = 32;
/// Bit of a column specification that marks its data as deflated.
const DEFLATE_BIT: u64 = 0x08;

const DOCUMENT: u8 = 0;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;

/// What the walk found: how many bytes the compressed parts inflate to,
/// and how many such parts there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inflated {
    pub bytes: u64,
    pub parts: usize,
}

/// Inflates, counting only, every compressed part of `bytes` (all chunks,
/// one budget). Refuses as soon as the total passes
/// [`MAX_INFLATED_BYTES`] or the parts number more than
/// [`MAX_COMPRESSED_PARTS`], and a part that is not valid DEFLATE (which
/// Automerge would refuse too).
pub fn inflated_size(bytes: &[u8]) -> Result<Inflated, Refusal> {
    let mut budget = Budget::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut c = Cursor(rest);
        let Some((kind, data)) = c.chunk() else {
            // Not a chunk Automerge can read either: it stops here.
            break;
        };
        match kind {
            DOCUMENT => document(data, &mut budget)?,
            BUNDLE => bundle(data, &mut budget)?,
            COMPRESSED_CHANGE => budget.inflate(data)?,
            _ => {}
        }
        rest = c.0;
    }
    Ok(budget.seen)
}

/// A document chunk's data: both metadata blocks, then both data blocks.
fn document(data: &[u8], budget: &mut Budget) -> Result<(), Refusal> {
    let mut c = Cursor(data);
    let Some((changes, ops)) = c.document_metadata() else {
        return Ok(());
    };
    if column_data(&mut c, changes, budget)? {
        column_data(&mut c, ops, budget)?;
    }
    Ok(())
}

/// A bundle chunk's data: each metadata block followed by its data.
fn bundle(data: &[u8], budget: &mut Budget) -> Result<(), Refusal> {
    let mut c = Cursor(data);
    let Some(changes) = c.bundle_metadata() else {
        return Ok(());
    };
    if column_data(&mut c, changes, budget)?
        && let Some(ops) = c.metadata()
    {
        column_data(&mut c, ops, budget)?;
    }
    Ok(())
}

/// The data of the columns `meta` describes, at the front of `c`: each
/// deflated one inflated against the budget. False when the bytes end
/// before the columns do (Automerge refuses that before inflating).
fn column_data(
    c: &mut Cursor<'_>,
    meta: Metadata<'_>,
    budget: &mut Budget,
) -> Result<bool, Refusal> {
    for (spec, len) in meta.iter() {
        let Some(part) = c.take(len) else {
            return Ok(false);
        };
        if spec & DEFLATE_BIT != 0 {
            budget.inflate(part)?;
        }
    }
    Ok(true)
}

/// A column metadata block, still in the bytes (read again to iterate, so
/// nothing is allocated for a count an attacker chose).
#[derive(Clone, Copy)]
struct Metadata<'a> {
    count: u64,
    pairs: &'a [u8],
}

impl<'a> Metadata<'a> {
    fn iter(self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let mut c = Cursor(self.pairs);
        (0..self.count).map_while(move |_| Some((c.uleb()?, c.uleb()?)))
    }
}

#[derive(Default)]
struct Budget {
    seen: Inflated,
}

impl Budget {
    /// Inflates one part into a small buffer, counting: never more than
    /// what is left of the budget plus one byte is produced.
    fn inflate(&mut self, compressed: &[u8]) -> Result<(), Refusal> {
        self.seen.parts += 1;
        if self.seen.parts > MAX_COMPRESSED_PARTS {
            return Err(Refusal::TooManyCompressedParts);
        }
        let left = MAX_INFLATED_BYTES as u64 - self.seen.bytes;
        // The decoder Automerge uses, so both read a part the same way.
        let mut part = flate2::bufread::DeflateDecoder::new(compressed).take(left + 1);
        let n = std::io::copy(&mut part, &mut std::io::sink())
            .map_err(|_| Refusal::Damaged("a compressed part is not valid DEFLATE".into()))?;
        if n > left {
            return Err(Refusal::InflatesTooLarge);
        }
        self.seen.bytes += n;
        Ok(())
    }
}

/// Reads the layout's primitives from the front of a slice; `None` when
/// the bytes end first or a number does not fit (as Automerge's parser).
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// An unsigned LEB128 number of at most 64 bits. Accepts every encoding
    /// Automerge's `leb128_u64` accepts, with the same value (and overlong
    /// ones too, which Automerge refuses before it inflates anything).
    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            let low = u64::from(byte & 0x7f);
            if i == 9 && low > 1 {
                return None;
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// One chunk: its type and data.
    fn chunk(&mut self) -> Option<(u8, &'a [u8])> {
        if self.take(4)? != MAGIC {
            return None;
        }
        self.take(4)?;
        let kind = self.take(1)?[0];
        let len = self.uleb()?;
        Some((kind, self.take(len)?))
    }

    /// Actor ids: a count, then each a length and its bytes.
    fn actors(&mut self) -> Option<()> {
        let count = self.uleb()?;
        for _ in 0..count {
            let len = self.uleb()?;
            self.take(len)?;
        }
        Some(())
    }

    /// Change hashes: a count of 32-byte hashes.
    fn hashes(&mut self) -> Option<()> {
        let count = self.uleb()?;
        self.take(count.checked_mul(HASH_BYTES)?)?;
        Some(())
    }

    /// A document's prefix (actors, heads) and its two metadata blocks.
    fn document_metadata(&mut self) -> Option<(Metadata<'a>, Metadata<'a>)> {
        self.actors()?;
        self.hashes()?;
        Some((self.metadata()?, self.metadata()?))
    }

    /// A bundle's prefix (dependencies, actors) and its change metadata.
    fn bundle_metadata(&mut self) -> Option<Metadata<'a>> {
        self.hashes()?;
        self.actors()?;
        self.metadata()
    }

    /// A column metadata block: a count, then (spec, length) pairs.
    fn metadata(&mut self) -> Option<Metadata<'a>> {
        let count = self.uleb()?;
        let start = self.0;
        for _ in 0..count {
            self.uleb()?;
            self.uleb()?;
        }
        let used = start.len() - self.0.len();
        Some(Metadata {
            count,
            pairs: &start[..used],
        })
    }
}
