// SPDX-License-Identifier: GPL-3.0-or-later
//! HPACK header decoding (RFC 7541), one [`Decoder`] per direction.
//!
//! Written here rather than taken from a crate because an observer must be
//! able to **join mid-stream**: when the probe starts on a live connection,
//! or bytes of a header block are lost, the dynamic table's earlier
//! contents are unknown. The HPACK crates on crates.io (`hpack`,
//! `fluke-hpack`/`loona-hpack`, `httlib-hpack`, `hpack-patched`; the `h2`
//! crate's decoder is internal) all treat an index beyond their table as a
//! fatal compression error, which is right for an endpoint and useless
//! here: one unknown reference would lose every later block.
//!
//! Here the table knows whether entries older than the ones it saw
//! inserted may exist (`unknown_tail`). A field that references such an
//! entry is absent and counted in [`Block::unknown`], never guessed, while
//! static-table and literal fields come through, and so do entries
//! inserted after the join: they sit at the lowest dynamic indices, and
//! the encoder's table is always a prefix of the one kept here (eviction
//! drops the oldest first, the unknown ones before any seen), so an index
//! into the known entries means the same entry on both sides. Entries are
//! evicted by a lower bound of their size (an entry whose name is unknown
//! counts only its value), so one is kept at worst longer than the encoder
//! keeps it, never dropped while the encoder can still reference it —
//! unless the encoder's table is larger than the cap here, when it becomes
//! unknown (flagged), still never wrong.
//!
//! Bounds: the table size is capped ([`MAX_TABLE`]), a header list's
//! decoded size too (`max_list`, HPACK bombs: fields past it are counted,
//! not kept, while the table is still followed); malformed input is an
//! error, never a panic.

use std::collections::VecDeque;

use super::huffman;

/// The largest dynamic table followed; a larger size update is capped.
pub const MAX_TABLE: usize = 64 * 1024;
/// SETTINGS_HEADER_TABLE_SIZE's initial value.
pub const DEFAULT_TABLE: usize = 4096;
/// An entry's overhead (§4.1).
const ENTRY_OVERHEAD: usize = 32;

/// The static table (Appendix A), index 1 first.
#[rustfmt::skip]
pub const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[derive(Clone, Debug)]
struct Entry {
    /// The name's octets then the value's (one buffer per entry, reused
    /// from an evicted entry where one is spare).
    text: Vec<u8>,
    /// Where the value starts; None: the name came from an entry that was
    /// unknown (the text is the value alone).
    name_len: Option<u32>,
    /// Its size, or a lower bound of it when the name is unknown.
    size: usize,
}

impl Entry {
    fn name(&self) -> Option<&[u8]> {
        self.name_len.map(|n| &self.text[..n as usize])
    }

    fn value(&self) -> &[u8] {
        &self.text[self.name_len.unwrap_or(0) as usize..]
    }
}

/// A table entry's (name, value); the name None when unknown.
type Field<'a> = (Option<&'a [u8]>, &'a [u8]);

/// A decoded header block. The fields' text is kept in one buffer, so a
/// block reused through [`Decoder::decode_into`] decodes with no
/// allocation once it has grown to a connection's blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Block {
    /// The kept fields' names and values, one after another.
    text: String,
    /// Per kept field: where its name starts, its value starts, and its
    /// value ends in `text`.
    spans: Vec<[u32; 3]>,
    /// Fields absent because they referenced a dynamic-table entry unknown
    /// to an observer that joined mid-stream.
    pub unknown: u32,
    /// Fields past the header list cap (decoded, not kept).
    pub over_cap: u32,
    /// The decoded list's size, name + value + 32 per field (§6.5.2's
    /// SETTINGS_MAX_HEADER_LIST_SIZE measure), including fields not kept.
    pub list_size: u64,
}

impl Block {
    /// Fields kept.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `i`-th field kept: (name, value), names lower case as HTTP/2
    /// sends them (text that is not UTF-8 is replaced lossily).
    pub fn field(&self, i: usize) -> (&str, &str) {
        let [n, v, e] = self.spans[i];
        (
            &self.text[n as usize..v as usize],
            &self.text[v as usize..e as usize],
        )
    }

    /// The fields kept, in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.spans.len()).map(|i| self.field(i))
    }

    /// The first field named `name`'s value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields().find(|&(n, _)| n == name).map(|(_, v)| v)
    }

    /// The text buffer's capacity (what keeping the block for reuse holds).
    pub fn capacity(&self) -> usize {
        self.text.capacity() + self.spans.capacity() * 12
    }

    /// Empty, keeping the buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.unknown = 0;
        self.over_cap = 0;
        self.list_size = 0;
    }
}

/// A [`Block`] being decoded: its text as octets, checked to be UTF-8
/// once at the end ([`Building::finish`]) rather than field by field.
struct Building<'a> {
    out: &'a mut Block,
    text: Vec<u8>,
}

impl<'a> Building<'a> {
    fn new(out: &'a mut Block) -> Building<'a> {
        out.clear();
        let text = std::mem::take(&mut out.text).into_bytes();
        Building { out, text }
    }

    /// Count a decoded field; keep it unless the list passes `max_list`.
    fn keep(&mut self, name: &[u8], value: &[u8], max_list: usize) {
        let out = &mut *self.out;
        out.list_size += (name.len() + value.len() + ENTRY_OVERHEAD) as u64;
        if out.list_size > max_list as u64 {
            out.over_cap += 1;
            return;
        }
        let n = self.text.len();
        self.text.extend_from_slice(name);
        let v = self.text.len();
        self.text.extend_from_slice(value);
        out.spans.push([n as u32, v as u32, self.text.len() as u32]);
    }

    /// The text into the block; a name or value that is not UTF-8 is
    /// replaced lossily (rare: every field is copied again then).
    fn finish(self) {
        let out = self.out;
        out.text = match String::from_utf8(self.text) {
            Ok(t) => t,
            Err(e) => {
                let raw = e.into_bytes();
                let mut t = String::with_capacity(raw.len());
                for sp in out.spans.iter_mut() {
                    let [n, v, end] = sp.map(|x| x as usize);
                    let n2 = t.len();
                    t.push_str(&String::from_utf8_lossy(&raw[n..v]));
                    let v2 = t.len();
                    t.push_str(&String::from_utf8_lossy(&raw[v..end]));
                    *sp = [n2 as u32, v2 as u32, t.len() as u32];
                }
                t
            }
        };
    }
}

/// Why a header block cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    IntegerOverflow,
    /// Index 0, or past the static and dynamic tables when the whole
    /// table is known.
    BadIndex,
    Huffman(huffman::HuffmanError),
    /// A size update after a field, or above the decoder's limit.
    SizeUpdate,
}

/// One direction's decoding state.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Newest first.
    table: VecDeque<Entry>,
    size: usize,
    /// The table size the encoder set (or the limit, until it sets one).
    max: usize,
    /// The decoder's SETTINGS_HEADER_TABLE_SIZE when seen (size updates
    /// above it are errors).
    limit: Option<usize>,
    /// Entries older than those seen inserted may exist.
    unknown_tail: bool,
    /// `max` is the encoder's own (a known start, or a size update seen).
    max_known: bool,
    /// Size updates above [`MAX_TABLE`].
    pub capped: u64,
    /// A literal's name and value as decoded (reused).
    scratch: Vec<u8>,
    /// Evicted entries' buffers, for the next insertions (an encoder that
    /// inserts every response's fields, as nginx does, evicts as often).
    spare: Vec<Vec<u8>>,
}

/// Spare entry buffers kept per decoder, and the largest kept.
const SPARE_BUFS: usize = 16;
const SPARE_BUF_MAX: usize = 256;

impl Decoder {
    /// `known_start`: the decoder has seen the connection from its start.
    pub fn new(known_start: bool) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: DEFAULT_TABLE,
            limit: None,
            unknown_tail: !known_start,
            max_known: known_start,
            capped: 0,
            scratch: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// The decoder's side advertised SETTINGS_HEADER_TABLE_SIZE.
    pub fn set_limit(&mut self, n: u32) {
        self.limit = Some(n as usize);
    }

    /// Bytes were lost (a header block not seen whole): whatever it
    /// inserted is unknown, so every entry is.
    pub fn forget(&mut self) {
        self.table.clear();
        self.size = 0;
        self.unknown_tail = true;
    }

    /// Entries known and the table size they take (a lower bound).
    pub fn known(&self) -> (usize, usize) {
        (self.table.len(), self.size)
    }

    pub fn tail_unknown(&self) -> bool {
        self.unknown_tail
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some(e) => {
                    self.size -= e.size;
                    if self.spare.len() < SPARE_BUFS && e.text.capacity() <= SPARE_BUF_MAX {
                        self.spare.push(e.text);
                    }
                }
                None => break,
            }
        }
    }

    /// Insert `text` (the name, of `name_len` octets, when known, then
    /// the value).
    fn insert(&mut self, text: &[u8], name_len: Option<usize>) {
        let size = text.len() + ENTRY_OVERHEAD;
        if size > self.max {
            // §4.4: the table is emptied, the entry not added
            self.table.clear();
            self.size = 0;
            self.unknown_tail &= !self.max_known;
            return;
        }
        self.evict_to(self.max - size);
        self.size += size;
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(text);
        self.table.push_front(Entry {
            text: buf,
            name_len: name_len.map(|n| n as u32),
            size,
        });
    }

    fn size_update(&mut self, n: usize) -> Result<(), Error> {
        if self.limit.is_some_and(|l| n > l) {
            return Err(Error::SizeUpdate);
        }
        if n > MAX_TABLE {
            self.capped += 1;
        }
        self.max = n.min(MAX_TABLE);
        self.max_known = n <= MAX_TABLE;
        self.evict_to(self.max);
        if self.max == 0 {
            self.unknown_tail = false;
        }
        Ok(())
    }

    /// The field at `index` (1-based, static then dynamic): Ok(None) when
    /// it is an unknown entry; (name, value), the name None when unknown.
    fn lookup(&self, index: usize) -> Result<Option<Field<'_>>, Error> {
        if index == 0 {
            return Err(Error::BadIndex);
        }
        if let Some(&(n, v)) = STATIC.get(index - 1) {
            return Ok(Some((Some(n.as_bytes()), v.as_bytes())));
        }
        match self.table.get(index - 1 - STATIC.len()) {
            Some(e) => Ok(Some((e.name(), e.value()))),
            None if self.unknown_tail => Ok(None),
            None => Err(Error::BadIndex),
        }
    }

    /// Decode one whole header block; fields whose decoded list size would
    /// pass `max_list` are not kept. On an error the table is unknown
    /// afterwards ([`Decoder::forget`]).
    pub fn decode(&mut self, block: &[u8], max_list: usize) -> Result<Block, Error> {
        let mut out = Block::default();
        self.decode_into(block, max_list, &mut out).map(|()| out)
    }

    /// [`Decoder::decode`] into `out` (cleared first, its buffers reused).
    pub fn decode_into(
        &mut self,
        block: &[u8],
        max_list: usize,
        out: &mut Block,
    ) -> Result<(), Error> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut building = Building::new(out);
        let r = self.decode_inner(block, max_list, &mut building, &mut scratch);
        building.finish();
        self.scratch = scratch;
        if r.is_err() {
            self.forget();
        }
        r
    }

    fn decode_inner(
        &mut self,
        mut b: &[u8],
        max_list: usize,
        out: &mut Building,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut fields_seen = false;
        while let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                // indexed field (§6.1)
                let (i, rest) = integer(b, 7)?;
                b = rest;
                match self.lookup(i)? {
                    Some((Some(n), v)) => out.keep(n, v, max_list),
                    _ => out.out.unknown += 1,
                }
                fields_seen = true;
            } else if first & 0xe0 == 0x20 {
                // dynamic table size update (§6.3)
                let (n, rest) = integer(b, 5)?;
                b = rest;
                if fields_seen {
                    return Err(Error::SizeUpdate);
                }
                self.size_update(n)?;
            } else {
                // literal: with incremental indexing (01), without (0000),
                // never indexed (0001)
                let (indexing, prefix) = if first & 0x40 != 0 {
                    (true, 6)
                } else {
                    (false, 4)
                };
                let (i, rest) = integer(b, prefix)?;
                b = rest;
                scratch.clear();
                let name_known = if i == 0 {
                    b = string(b, scratch)?;
                    true
                } else {
                    match self.lookup(i)? {
                        Some((Some(n), _)) => {
                            scratch.extend_from_slice(n);
                            true
                        }
                        _ => false,
                    }
                };
                let name_len = scratch.len();
                b = string(b, scratch)?;
                if name_known {
                    let (n, v) = scratch.split_at(name_len);
                    out.keep(n, v, max_list);
                } else {
                    out.out.unknown += 1;
                }
                if indexing {
                    self.insert(scratch, name_known.then_some(name_len));
                }
                fields_seen = true;
            }
        }
        Ok(())
    }
}

/// An integer with an `n`-bit prefix (§5.1).
fn integer(b: &[u8], n: u32) -> Result<(usize, &[u8]), Error> {
    let (&first, mut rest) = b.split_first().ok_or(Error::Truncated)?;
    let mask = (1u32 << n) - 1;
    let mut v = (first as u32 & mask) as u64;
    if v < mask as u64 {
        return Ok((v as usize, rest));
    }
    let mut shift = 0;
    loop {
        let (&c, r) = rest.split_first().ok_or(Error::Truncated)?;
        rest = r;
        if shift > 28 {
            // zero continuation octets past any u32 (and a shift past 63)
            return Err(Error::IntegerOverflow);
        }
        v += ((c & 0x7f) as u64) << shift;
        if v > u32::MAX as u64 {
            return Err(Error::IntegerOverflow);
        }
        if c & 0x80 == 0 {
            return Ok((v as usize, rest));
        }
        shift += 7;
    }
}

/// A string literal (§5.2), Huffman-decoded when flagged, appended to
/// `out`; returns the rest of `b`.
fn string<'a>(b: &'a [u8], out: &mut Vec<u8>) -> Result<&'a [u8], Error> {
    let huff = b.first().ok_or(Error::Truncated)? & 0x80 != 0;
    let (len, rest) = integer(b, 7)?;
    if len > rest.len() {
        return Err(Error::Truncated);
    }
    let (s, rest) = rest.split_at(len);
    if huff {
        huffman::decode(s, out).map_err(Error::Huffman)?;
    } else {
        out.extend_from_slice(s);
    }
    Ok(rest)
}

#[cfg(test)]
#[path = "hpack_tests.rs"]
mod tests;
