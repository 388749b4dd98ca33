//! TensorBoard event files (`events.out.tfevents.*`), written by hand: each record is a
//! length-prefixed `Event` protocol buffer with masked CRC-32C checksums (TFRecord framing). Scalars
//! and the run's settings as text, flushed after every write so a live TensorBoard sees progress.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct EventWriter {
    out: BufWriter<File>,
}

impl EventWriter {
    pub fn create(dir: &Path) -> Result<EventWriter> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
        let name = format!("events.out.tfevents.{}.{}.{}.ftlua", now.as_secs(), host.trim(), std::process::id());
        let path = dir.join(name);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = EventWriter { out: BufWriter::new(file) };
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_bytes(&mut event, 3, b"brain.Event:2"); // file_version
        writer.write_record(&event)?;
        Ok(writer)
    }

    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let mut summary = Vec::new();
        for (tag, value) in values.iter().filter(|(_, v)| v.is_finite()) {
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, tag.as_bytes()); // tag
            put_float(&mut entry, 2, *value as f32); // simple_value
            put_bytes(&mut summary, 1, &entry); // Summary.value
        }
        self.write_summary(step, &summary)
    }

    /// A text summary (shown in TensorBoard's Text tab), e.g. the run's settings.
    pub fn text(&mut self, step: u64, tag: &str, text: &str) -> Result<()> {
        let mut dim = Vec::new();
        put_varint_field(&mut dim, 1, 1); // TensorShapeProto.Dim { size: 1 }
        let mut shape_proto = Vec::new();
        put_bytes(&mut shape_proto, 2, &dim);
        let mut tensor = Vec::new();
        put_varint_field(&mut tensor, 1, 7); // dtype: DT_STRING
        put_bytes(&mut tensor, 2, &shape_proto); // tensor_shape
        put_bytes(&mut tensor, 8, text.as_bytes()); // string_val
        let mut plugin = Vec::new();
        put_bytes(&mut plugin, 1, b"text"); // plugin_name
        let mut metadata = Vec::new();
        put_bytes(&mut metadata, 1, &plugin); // SummaryMetadata.plugin_data
        let mut entry = Vec::new();
        put_bytes(&mut entry, 1, tag.as_bytes());
        put_bytes(&mut entry, 9, &metadata); // metadata
        put_bytes(&mut entry, 8, &tensor); // tensor
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &entry);
        self.write_summary(step, &summary)
    }

    fn write_summary(&mut self, step: u64, summary: &[u8]) -> Result<()> {
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time());
        put_varint_field(&mut event, 2, step); // step
        put_bytes(&mut event, 5, summary); // summary
        self.write_record(&event)
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc(data).to_le_bytes())?;
        self.out.flush()?;
        Ok(())
    }
}

pub(crate) fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn put_varint_field(buf: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(buf, field << 3);
    put_varint(buf, value);
}

fn put_double(buf: &mut Vec<u8>, field: u64, value: f64) {
    put_varint(buf, (field << 3) | 1);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put_float(buf: &mut Vec<u8>, field: u64, value: f32) {
    put_varint(buf, (field << 3) | 5);
    buf.extend_from_slice(&value.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(buf, (field << 3) | 2);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli), bitwise: records are small and written a few times per second.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// TFRecord's masking of the CRC, so that CRCs of data containing CRCs stay well distributed.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn varints_encode_like_protobuf() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xAC, 0x02]);
    }
}
