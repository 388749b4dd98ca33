//! Reading weights from HF-layout safetensors files (single or sharded with
//! `model.safetensors.index.json`) into a VarStore, one tensor at a time: only the model itself
//! and one tensor's bytes are in memory, never a second copy of the file.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Kind, Tensor};

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<i64>,
    data_offsets: (u64, u64),
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

/// The safetensors files of a checkpoint directory.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
        let parsed: ShardIndex = serde_json::from_str(&text).with_context(|| format!("parsing {}", index.display()))?;
        let shards: BTreeSet<&String> = parsed.weight_map.values().collect();
        return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
    }
    bail!("{}: no model.safetensors or model.safetensors.index.json", dir.display())
}

fn kind_of(dtype: &str) -> Result<(Kind, usize)> {
    Ok(match dtype {
        "F32" => (Kind::Float, 4),
        "F16" => (Kind::Half, 2),
        "BF16" => (Kind::BFloat16, 2),
        "F64" => (Kind::Double, 8),
        other => bail!("unsupported weight dtype {other}"),
    })
}

/// The tensors of one safetensors file, with offsets already checked against the file's size.
struct Header {
    data_start: u64,
    entries: HashMap<String, TensorInfo>,
}

fn read_header(file: &mut File, path: &Path) -> Result<Header> {
    let context = || path.display().to_string();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).with_context(|| format!("{}: not a safetensors file", context()))?;
    let header_len = u64::from_le_bytes(len);
    let file_len = file.metadata()?.len();
    if header_len > file_len.saturating_sub(8) {
        bail!("{}: header length {header_len} exceeds the file ({file_len} bytes): damaged file", context());
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    let mut raw: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&header).with_context(|| format!("{}: damaged header", context()))?;
    raw.remove("__metadata__");
    let data_start = 8 + header_len;
    let mut entries = HashMap::with_capacity(raw.len());
    for (name, value) in raw {
        let info: TensorInfo = serde_json::from_value(value).with_context(|| format!("{}: entry {name}", context()))?;
        let (_, size) = kind_of(&info.dtype).with_context(|| format!("{}: {name}", context()))?;
        let (begin, end) = info.data_offsets;
        let expected = info.shape.iter().product::<i64>() as u64 * size as u64;
        if end < begin || end - begin != expected || data_start + end > file_len {
            bail!(
                "{}: {name} has offsets {begin}..{end} for shape {:?} in a file of {file_len} bytes: damaged file",
                context(),
                info.shape
            );
        }
        entries.insert(name, info);
    }
    Ok(Header { data_start, entries })
}

/// Checks, from the headers alone, that `path` is a whole safetensors file holding every tensor
/// of `expected` with its shape.
pub fn check_file(path: &Path, expected: &[(String, Vec<i64>)]) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let header = read_header(&mut file, path)?;
    for (name, shape) in expected {
        match header.entries.get(name) {
            None => bail!("{}: no tensor {name}", path.display()),
            Some(info) if &info.shape != shape => {
                bail!("{}: {name} has shape {:?}, expected {shape:?}", path.display(), info.shape)
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Copies every variable of `vs` from the checkpoint in `dir`; every variable must be found with
/// its shape. Weights in other float types are converted. Returns the names in the files that the
/// model does not use (e.g. HF's duplicated tied embeddings). All headers are checked before the
/// first weight is copied, so a damaged or mismatched checkpoint leaves `vs` untouched.
pub fn load_into(vs: &VarStore, dir: &Path) -> Result<Vec<String>> {
    let _no_grad = tch::no_grad_guard();
    let mut files = Vec::new();
    let mut variables = vs.variables();
    let mut unused = Vec::new();
    for path in weight_files(dir)? {
        let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let header = read_header(&mut file, &path)?;
        let mut found = Vec::new();
        for (name, info) in header.entries {
            match variables.remove(&name) {
                None => unused.push(name),
                Some(var) if info.shape != var.size() => {
                    bail!("{}: {name} has shape {:?}, the model expects {:?}", path.display(), info.shape, var.size())
                }
                Some(var) => found.push((info, var)),
            }
        }
        files.push((path, file, header.data_start, found));
    }
    if !variables.is_empty() {
        let mut missing: Vec<String> = variables.into_keys().collect();
        missing.sort();
        bail!("{}: weights missing for {}", dir.display(), missing.join(", "));
    }
    let mut buffer = Vec::new();
    for (path, mut file, data_start, found) in files {
        for (info, mut var) in found {
            let (kind, _) = kind_of(&info.dtype)?;
            let (begin, end) = info.data_offsets;
            buffer.resize((end - begin) as usize, 0);
            file.seek(SeekFrom::Start(data_start + begin))?;
            file.read_exact(&mut buffer).with_context(|| format!("reading {}", path.display()))?;
            var.f_copy_(&Tensor::f_from_data_size(&buffer, &info.shape, kind)?)?;
        }
    }
    unused.sort();
    Ok(unused)
}
