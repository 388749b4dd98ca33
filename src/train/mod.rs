//! Training: settings, the optimizer, events and decisions, checkpoints, metrics and the loop.

pub mod checkpoint;
pub mod evaluate;
pub mod events;
pub mod interrupt;
pub mod metrics;
pub mod oom;
pub mod optim;
pub mod progress;
pub mod runlog;
pub mod sampling;
pub mod settings;
pub mod state;
pub mod tensorboard;
pub mod trainer;

pub use events::{Decision, Event, Metrics};
pub use settings::Settings;
pub use state::TrainerState;
pub use trainer::{fit, FitResult, Hooks, TrainJob};
