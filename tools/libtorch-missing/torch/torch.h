// Included only when the real libtorch headers are absent (see .cargo/config.toml).
#error "libtorch is not installed. Run `bin/setup` (it installs PyPI's torch==2.11.0 into .venv and links .libtorch to it), then build again."
