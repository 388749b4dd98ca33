// The part of PyTorch's c10d that ftlua uses, behind a C interface for Rust: a Gloo process group
// rendezvousing through a TCPStore, collectives on tensors, and gradient buckets (each parameter's
// gradient a view into a flat bucket, as DDP's gradient_as_bucket_view, so reducing a bucket
// reduces the gradients in place, without copies).
// Every function returns 0 on success and -1 on failure (csrc/guard.h).

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "guard.h"


struct FtluaGroup {
  c10::intrusive_ptr<c10d::Backend> backend;
};

struct FtluaBuckets {
  std::vector<at::Tensor> params;
  std::vector<at::Tensor> buckets;
};

extern "C" {

// `agent_store`: torchrun's agent already serves the store at addr:port (all ranks are clients);
// otherwise rank 0 serves it.
int ftlua_dist_new(const char* backend, const char* addr, uint16_t port, int rank, int size, bool agent_store,
                   int64_t timeout_ms, FtluaGroup** out) {
  return ftlua::guarded([&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = port;
    options.isServer = rank == 0 && !agent_store;
    options.numWorkers = size;
    options.waitWorkers = false;
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(addr), options);
    auto store = c10::make_intrusive<c10d::PrefixStore>("ftlua/", tcp);
    std::string name(backend);
    auto group = new FtluaGroup();
    if (name == "gloo") {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      // As torch.distributed: GLOO_SOCKET_IFNAME picks the interface, else this host's address.
      const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
      gloo_options->devices.push_back(interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                                : c10d::ProcessGroupGloo::createDefaultDevice());
      group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, gloo_options);
    } else {
      delete group;
      throw std::runtime_error("no " + name + " backend in this build of ftlua");
    }
    *out = group;
  });
}

void ftlua_dist_free(FtluaGroup* group) { delete group; }

// Sums each tensor across ranks in place; all reductions are started before the first is waited for.
int ftlua_dist_all_reduce_sum(FtluaGroup* group, at::Tensor** tensors, size_t count) {
  return ftlua::guarded([&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> pending;
    for (size_t i = 0; i < count; i++) {
      std::vector<at::Tensor> one{*tensors[i]};
      c10d::AllreduceOptions options;
      options.reduceOp = c10d::ReduceOp::SUM;
      pending.push_back(group->backend->allreduce(one, options));
    }
    for (auto& work : pending) work->wait();
  });
}

int ftlua_dist_broadcast(FtluaGroup* group, at::Tensor* tensor, int root) {
  return ftlua::guarded([&] {
    std::vector<at::Tensor> one{*tensor};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    group->backend->broadcast(one, options)->wait();
  });
}

// Gives every parameter a gradient that is a view into a flat bucket of at most `bucket_bytes`
// (one dtype and device per bucket), keeping the values of gradients already there. Every rank
// must pass the parameters in the same order.
int ftlua_dist_buckets_new(at::Tensor** params, size_t count, int64_t bucket_bytes, FtluaBuckets** out) {
  return ftlua::guarded([&] {
    at::NoGradGuard no_grad;
    auto result = new FtluaBuckets();
    std::vector<std::vector<at::Tensor>> groups;
    int64_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
      const at::Tensor& param = *params[i];
      result->params.push_back(param);
      int64_t size = param.numel() * param.element_size();
      bool fits = !groups.empty() && bytes + size <= bucket_bytes &&
                  groups.back().front().scalar_type() == param.scalar_type() &&
                  groups.back().front().device() == param.device();
      if (!fits) {
        groups.emplace_back();
        bytes = 0;
      }
      groups.back().push_back(param);
      bytes += size;
    }
    for (auto& members : groups) {
      int64_t total = 0;
      for (auto& p : members) total += p.numel();
      auto bucket = at::zeros({total}, members.front().options());
      int64_t offset = 0;
      for (auto& p : members) {
        auto view = bucket.narrow(0, offset, p.numel()).view(p.sizes());
        if (p.grad().defined()) view.copy_(p.grad());
        p.mutable_grad() = view;
        offset += p.numel();
      }
      result->buckets.push_back(bucket);
    }
    *out = result;
  });
}

size_t ftlua_dist_buckets_count(FtluaBuckets* buckets) { return buckets->buckets.size(); }

// Whether every parameter's gradient is still the view the buckets gave it.
bool ftlua_dist_buckets_intact(FtluaBuckets* buckets) {
  for (auto& p : buckets->params) {
    const at::Tensor& grad = p.grad();
    if (!grad.defined()) return false;
    bool inside = false;
    for (auto& b : buckets->buckets) {
      auto start = static_cast<const char*>(b.data_ptr());
      auto at = static_cast<const char*>(grad.data_ptr());
      inside = inside || (at >= start && at < start + b.numel() * b.element_size());
    }
    if (!inside) return false;
  }
  return true;
}

int ftlua_dist_buckets_all_reduce(FtluaGroup* group, FtluaBuckets* buckets) {
  std::vector<at::Tensor*> tensors;
  for (auto& b : buckets->buckets) tensors.push_back(&b);
  return ftlua_dist_all_reduce_sum(group, tensors.data(), tensors.size());
}

void ftlua_dist_buckets_free(FtluaBuckets* buckets) { delete buckets; }

}  // extern "C"
