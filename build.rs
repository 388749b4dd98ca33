//! Bakes libtorch's library directory into the binary's run path, so `ftlua` finds libtorch
//! without LD_LIBRARY_PATH. torch-sys reports the directory through its `links = "tch"` metadata.
//! Also embeds the Lua standard library (stdlib/ftlua/**.lua) into the binary, and compiles the
//! C++ shims over what tch does not expose (csrc/: c10d for data-parallel training, ATen's fused
//! AdamW).
use std::path::{Path, PathBuf};

fn main() {
    embed_stdlib();
    link_libtorch();
    compile_native_shims();
}

/// Compiles csrc/*.cpp against libtorch's headers (the same ones torch-sys compiles against)
/// and the Gloo declarations they include (third_party/gloo: the wheel does not ship them).
fn compile_native_shims() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=third_party/gloo/include");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        panic!("LIBTORCH is not set: run bin/setup (it installs libtorch and .cargo/config.toml points at it)");
    };
    let libtorch = std::fs::canonicalize(&libtorch).unwrap_or_else(|_| PathBuf::from(&libtorch));
    let include = libtorch.join("include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .files(["csrc/guard.cpp", "csrc/dist.cpp", "csrc/adamw.cpp"])
        .include("third_party/gloo/include")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        // PyPI's torch wheels are built with the C++11 ABI (their symbols name std::__cxx11).
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .flag("-DUSE_C10D_GLOO")
        .warnings(false);
    build.compile("ftlua_native");
}

/// Writes `$OUT_DIR/stdlib.rs`: a table of (module name, source) for every stdlib file.
fn embed_stdlib() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    collect_lua(&root, &root.join("ftlua"), &mut entries);
    entries.sort();
    let mut code = String::from("pub const STDLIB: &[(&str, &str)] = &[\n");
    for (module, path) in entries {
        code += &format!("    ({module:?}, include_str!({path:?})),\n");
    }
    code += "];\n";
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("stdlib.rs");
    std::fs::write(out, code).unwrap();
}

fn collect_lua(root: &Path, dir: &Path, entries: &mut Vec<(String, String)>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_lua(root, &path, entries);
        } else if path.extension().is_some_and(|e| e == "lua") {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let module = relative.to_string_lossy().replace('/', ".");
            let module = module.strip_suffix(".init").unwrap_or(&module).to_owned();
            entries.push((module, path.display().to_string()));
        }
    }
}

fn link_libtorch() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib_dir = std::fs::canonicalize(&lib_dir).unwrap_or_else(|_| lib_dir.into());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    // Rust links with --as-needed, which would drop libtorch_cuda (nothing references it by
    // symbol) and leave a GPU machine without CUDA. Keep it when the wheel has it.
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
