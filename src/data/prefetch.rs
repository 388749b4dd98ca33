//! Collation ahead of the step: a background thread pads the next step's micro-batches while the
//! current step computes. It runs one step ahead at most, so memory stays flat; when the step
//! turns out different from the one prefetched (a new epoch, a batch size changed after an
//! out-of-memory error), that step is collated in place instead.

use super::batch::{collate, Batch};
use super::Encoded;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::Device;

struct Request {
    samples: Arc<Vec<Encoded>>,
    micro_batches: Vec<Vec<usize>>,
}

pub struct Prefetcher {
    requests: Option<Sender<Request>>,
    results: Receiver<Vec<Batch>>,
    /// What the worker is collating: the sample set it reads and the micro-batches.
    pending: Option<(Arc<Vec<Encoded>>, Vec<Vec<usize>>)>,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    pub fn new() -> std::io::Result<Prefetcher> {
        let (requests, inbox) = bounded::<Request>(1);
        let (outbox, results) = bounded(1);
        let worker = std::thread::Builder::new().name("ftlua-prefetch".into()).spawn(move || {
            for request in inbox {
                let batches = request
                    .micro_batches
                    .iter()
                    .map(|micro| collate(&micro.iter().map(|&i| &request.samples[i]).collect::<Vec<_>>(), Device::Cpu))
                    .collect();
                if outbox.send(batches).is_err() {
                    break;
                }
            }
        })?;
        Ok(Prefetcher { requests: Some(requests), results, pending: None, worker: Some(worker) })
    }

    /// Starts collating `micro_batches` of `samples` in the background.
    pub fn ahead(&mut self, samples: &Arc<Vec<Encoded>>, micro_batches: Vec<Vec<usize>>) {
        self.discard_pending();
        let request = Request { samples: Arc::clone(samples), micro_batches: micro_batches.clone() };
        if self.requests.as_ref().is_some_and(|r| r.send(request).is_ok()) {
            self.pending = Some((Arc::clone(samples), micro_batches));
        }
    }

    /// The batches of `micro_batches` on `device`: the prefetched ones when they are these,
    /// collated here otherwise.
    pub fn take(&mut self, samples: &Arc<Vec<Encoded>>, micro_batches: &[Vec<usize>], device: Device) -> Vec<Batch> {
        let prefetched = match &self.pending {
            Some((set, planned)) if Arc::ptr_eq(set, samples) && planned == micro_batches => {
                self.pending = None;
                self.results.recv().ok()
            }
            _ => {
                self.discard_pending();
                None
            }
        };
        let batches = prefetched.unwrap_or_else(|| {
            micro_batches
                .iter()
                .map(|micro| collate(&micro.iter().map(|&i| &samples[i]).collect::<Vec<_>>(), Device::Cpu))
                .collect()
        });
        match device {
            Device::Cpu => batches,
            _ => batches.into_iter().map(|b| b.to_device(device)).collect(),
        }
    }

    fn discard_pending(&mut self) {
        if self.pending.take().is_some() {
            let _ = self.results.recv();
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.requests.take(); // ends the worker's loop
        self.discard_pending();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Arc<Vec<Encoded>> {
        Arc::new((0..10).map(|i| Encoded { source: vec![5; i + 1], target: vec![7; 2] }).collect())
    }

    fn shapes(batches: &[Batch]) -> Vec<Vec<i64>> {
        batches.iter().map(|b| b.input_ids.size()).collect()
    }

    #[test]
    fn prefetched_batches_equal_batches_collated_in_place() {
        let set = samples();
        let plan = vec![vec![0, 9], vec![3, 4, 5]];
        let mut prefetcher = Prefetcher::new().unwrap();
        prefetcher.ahead(&set, plan.clone());
        let fetched = prefetcher.take(&set, &plan, Device::Cpu);
        assert_eq!(shapes(&fetched), [vec![2, 10], vec![3, 6]]);
        let mut in_place = Prefetcher::new().unwrap();
        let direct = in_place.take(&set, &plan, Device::Cpu);
        for (a, b) in fetched.iter().zip(&direct) {
            assert!(a.input_ids.equal(&b.input_ids) && a.labels.equal(&b.labels));
        }
    }

    #[test]
    fn a_different_step_or_sample_set_is_collated_in_place() {
        let set = samples();
        let mut prefetcher = Prefetcher::new().unwrap();
        prefetcher.ahead(&set, vec![vec![0, 1, 2, 3]]);
        let halved = prefetcher.take(&set, &[vec![0, 1], vec![2, 3]], Device::Cpu);
        assert_eq!(shapes(&halved), [vec![2, 2], vec![2, 4]]);
        let shortened: Arc<Vec<Encoded>> =
            Arc::new(set.iter().map(|e| Encoded { source: vec![5], ..e.clone() }).collect());
        prefetcher.ahead(&set, vec![vec![8, 9]]);
        assert_eq!(shapes(&prefetcher.take(&shortened, &[vec![8, 9]], Device::Cpu)), [vec![2, 1]]);
    }
}
