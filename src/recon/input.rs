// SPDX-License-Identifier: GPL-3.0-or-later
//! The inputs of `osprey recon-diff`: record streams read back into typed
//! records ([`crate::record::read_json_line`]) from JSONL, or straight
//! from `osprey wire` over a capture.

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::rc::Rc;

use anyhow::Context;

use super::engine::Rec;
use crate::event::Role;
use crate::record::{read_json_line, ReadLine, Record, TXN_TYPE};

/// Why an input item is not a record.
pub(super) enum ItemError {
    /// A line that is not JSON: counted and skipped.
    NotJson(String),
    /// The input cannot be read on: it ends there.
    Io(String),
}

pub(super) type RecIter = Box<dyn Iterator<Item = Result<ReadLine, ItemError>>>;

pub(super) struct Input {
    pub(super) name: &'static str,
    it: RecIter,
    pub(super) done: bool,
    pub(super) max_end: i64,
    /// Transaction records (of a protocol recon compares).
    pub(super) records: u64,
    /// Transaction records without addresses or timestamps, or whose
    /// fields do not fit the record type.
    pub(super) unusable: u64,
    /// Why the first unusable record was (e.g. a number out of range).
    pub(super) first_unusable: Option<String>,
    /// Lines of other record types (messages, events, non-objects).
    pub(super) other_records: u64,
    /// Records of a protocol recon does not compare.
    pub(super) other_protocol: u64,
    pub(super) bad_lines: u64,
    pub(super) first_error: Option<String>,
    /// Reading stopped here (the input could not be read to its end).
    pub(super) io_error: Option<String>,
}

impl Input {
    pub(super) fn new(name: &'static str, it: RecIter) -> Input {
        Input {
            name,
            it,
            done: false,
            max_end: i64::MIN,
            records: 0,
            unusable: 0,
            first_unusable: None,
            other_records: 0,
            other_protocol: 0,
            bad_lines: 0,
            first_error: None,
            io_error: None,
        }
    }

    /// Next usable transaction record.
    pub(super) fn next(&mut self) -> Option<Rec> {
        loop {
            let line = match self.it.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(ItemError::NotJson(e))) => {
                    self.bad_lines += 1;
                    self.first_error.get_or_insert(e);
                    continue;
                }
                Some(Err(ItemError::Io(e))) => {
                    self.io_error = Some(e);
                    self.done = true;
                    return None;
                }
                Some(Ok(l)) => l,
            };
            let t = match line {
                ReadLine::Record(Record::Transaction(t)) => t,
                ReadLine::Record(Record::Message(_)) | ReadLine::OtherType => {
                    self.other_records += 1;
                    continue;
                }
                ReadLine::Unfit { kind, .. } if kind != TXN_TYPE => {
                    self.other_records += 1;
                    continue;
                }
                ReadLine::OtherProtocol(_) => {
                    self.other_protocol += 1;
                    continue;
                }
                ReadLine::Unfit { error, .. } => {
                    self.records += 1;
                    self.unusable += 1;
                    self.first_unusable
                        .get_or_insert_with(|| format!("record {}: {error}", self.records));
                    continue;
                }
            };
            self.records += 1;
            match Rec::new(t) {
                Ok(r) => {
                    self.max_end = self.max_end.max(r.ts_end);
                    return Some(r);
                }
                Err(why) => {
                    self.unusable += 1;
                    self.first_unusable
                        .get_or_insert_with(|| format!("record {}: {why}", self.records));
                }
            }
        }
    }
}

/// The records of a JSONL file. A read error ends the stream with
/// [`ItemError::Io`].
pub(super) fn jsonl_iter(path: &Path) -> anyhow::Result<RecIter> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(lines_iter(BufReader::with_capacity(256 * 1024, f)))
}

/// The records of JSONL read from `r` (blank lines skipped).
pub(super) fn lines_iter(r: impl BufRead + 'static) -> RecIter {
    let mut lines = r.split(b'\n');
    let mut n = 0u64;
    let mut failed = false;
    Box::new(std::iter::from_fn(move || loop {
        if failed {
            return None;
        }
        n += 1;
        match lines.next()? {
            Err(e) => {
                // a read error repeats (e.g. EISDIR): do not read on
                failed = true;
                return Some(Err(ItemError::Io(format!("line {n}: {e}"))));
            }
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(l) => {
                return Some(
                    read_json_line(&l).map_err(|e| ItemError::NotJson(format!("line {n}: {e}"))),
                )
            }
        }
    }))
}

/// Does the JSONL file contain transaction records of each role? (cheap
/// pre-pass; Err when the file cannot be read)
pub(super) fn roles_in(path: &Path) -> anyhow::Result<[bool; 2]> {
    let mut has = [false; 2];
    for item in jsonl_iter(path)? {
        match item {
            Err(ItemError::Io(e)) => anyhow::bail!("{}: {e}", path.display()),
            Ok(ReadLine::Record(Record::Transaction(t))) => match t.conn.role {
                Role::Client => has[0] = true,
                Role::Server => has[1] = true,
                Role::Unknown => {}
            },
            _ => {}
        }
        if has == [true, true] {
            break;
        }
    }
    Ok(has)
}

pub(super) type WireSummaryCell = Rc<RefCell<Option<crate::wire::WireSummary>>>;

/// The wire input: JSONL, or a capture run through `osprey wire` (its
/// summary lands in the returned cell once the capture is exhausted).
pub(super) fn wire_input(path: &Path) -> anyhow::Result<(RecIter, WireSummaryCell)> {
    let cell = WireSummaryCell::default();
    if crate::wire::is_capture(path).with_context(|| format!("opening {}", path.display()))? {
        let stream = crate::wire::open(
            path,
            crate::wire::tracker_config(false, crate::redact::Redact::default(), false),
        )?;
        let mut stream = Some(stream);
        let out = cell.clone();
        let it = std::iter::from_fn(move || {
            let s = stream.as_mut()?;
            match s.next_record() {
                Some(r) => Some(Ok(ReadLine::Record(r))),
                None => {
                    *out.borrow_mut() = Some(s.summary());
                    stream = None;
                    None
                }
            }
        });
        Ok((Box::new(it), cell))
    } else {
        Ok((jsonl_iter(path)?, cell))
    }
}

/// Notes about the capture that explain differences.
pub(super) fn capture_notes(w: &crate::wire::WireSummary, notes: &mut Vec<String>) {
    let r = &w.reassembly;
    if r.snaplen_cut_bytes > 0 {
        notes.push(format!(
            "the capture's snaplen cut {} payload bytes: message heads longer than the snaplen cannot be \
             parsed (wire records then lack the response or request); capture with -s 0",
            r.snaplen_cut_bytes
        ));
    }
    if r.gaps > 0 {
        notes.push(format!(
            "the capture is missing {} bytes in {} places (packets dropped by the capturing host or the \
             SPAN/TAP); wire records around them carry gap/truncated",
            r.gap_bytes, r.gaps
        ));
    }
    if r.flows_midstream > 0 {
        notes.push(format!(
            "{} capture flows were first seen mid-stream (capture started after the connection)",
            r.flows_midstream
        ));
    }
    if let Some(e) = &w.error {
        notes.push(format!("the capture ended early: {e}"));
    }
}
