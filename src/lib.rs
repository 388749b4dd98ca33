//! ftlua: a Lua-scriptable training runtime for fine-tuning seq2seq and QA models on libtorch.

pub mod cli;
pub mod data;
pub mod dist;
pub mod doc;
pub mod lua;
pub mod model;
pub mod native;
pub mod predict;
pub mod report;
pub mod train;
