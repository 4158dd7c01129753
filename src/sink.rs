// SPDX-License-Identifier: GPL-3.0-or-later
//! Output sinks. The writer thread owns one `Sink`; JSON lines first.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::output::Output;
use crate::record::Record;

/// Where records go. Implementations must not write anything but records.
pub trait Sink: Send {
    fn emit(&mut self, item: &Output) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

/// One JSON object per line.
pub struct JsonlSink<W: Write + Send> {
    out: BufWriter<W>,
    line: Vec<u8>,
}

impl<W: Write + Send> JsonlSink<W> {
    pub fn new(w: W) -> Self {
        JsonlSink { out: BufWriter::with_capacity(256 * 1024, w), line: Vec::with_capacity(1024) }
    }
}

impl JsonlSink<Box<dyn Write + Send>> {
    /// stdout when `path` is None or "-", else the file (created/truncated).
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        let w: Box<dyn Write + Send> = match path {
            None => Box::new(io::stdout()),
            Some(p) if p.as_os_str() == "-" => Box::new(io::stdout()),
            Some(p) => Box::new(File::create(p)?),
        };
        Ok(JsonlSink::new(w))
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        self.line.clear();
        match item {
            // the hot path: same bytes as serde_json, written directly
            Output::Record(Record::Transaction(t)) => crate::jsonline::write_transaction(t, &mut self.line),
            _ => serde_json::to_writer(&mut self.line, item).map_err(io::Error::other)?,
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Collects records in memory (tests).
#[derive(Default)]
pub struct VecSink(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Sink for VecSink {
    fn emit(&mut self, item: &Output) -> io::Result<()> {
        let s = serde_json::to_string(item).map_err(io::Error::other)?;
        self.0.lock().unwrap().push(s);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
