#include "ddp/dist/nccl_communicator.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <sched.h>

#include <exception>
#include <optional>
#include <sstream>

#include "ddp/core/check.h"
#include "ddp/dist/mpi_check.h"
#include "ddp/dist/mpi_communicator.h"

#define NCCL_CHECK(call)                                                                                    \
  do {                                                                                                      \
    ncclResult_t ddp_nccl_rc_ = (call);                                                                     \
    DDP_CHECK(ddp_nccl_rc_ == ncclSuccess, #call << " failed: " << ncclGetErrorString(ddp_nccl_rc_) << " (" \
                                                 << ncclGetLastError(nullptr) << ")");                      \
  } while (0)

#define CUDA_CHECK(call)                                                                              \
  do {                                                                                                \
    cudaError_t ddp_cuda_rc_ = (call);                                                                \
    DDP_CHECK(ddp_cuda_rc_ == cudaSuccess, #call << " failed: " << cudaGetErrorString(ddp_cuda_rc_)); \
  } while (0)

namespace ddp {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    case at::kByte:
      return ncclUint8;
    default:
      break;
  }
  DDP_CHECK(false, "NCCL communicator cannot reduce dtype " << t.dtype());
  return ncclFloat32;
}

// Owns one CUDA event (timing disabled).
class CudaEvent {
 public:
  CudaEvent() { CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~CudaEvent() { cudaEventDestroy(event_); }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_{};
};

class NcclCommunicator;

class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator* comm, std::unique_ptr<CudaEvent> done, std::string what,
           std::optional<Staged> staged)
      : comm_(comm),
        done_(std::move(done)),
        what_(std::move(what)),
        start_(Clock::now()),
        staged_(std::move(staged)) {}
  void wait() override;
  bool test() override;

 private:
  NcclCommunicator* comm_;
  std::unique_ptr<CudaEvent> done_;
  std::string what_;
  Clock::time_point start_;
  std::optional<Staged> staged_;  // Written back once the collective completed.
  bool finished_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm mpi, int device, std::chrono::milliseconds timeout)
      : device_(device), timeout_(timeout) {
    MPI_CHECK(MPI_Comm_rank(mpi, &rank_));
    MPI_CHECK(MPI_Comm_size(mpi, &size_));
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    ncclUniqueId id{};
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    MPI_Request request;
    MPI_CHECK(MPI_Ibcast(&id, sizeof(id), MPI_BYTE, 0, mpi, &request));
    wait_with_deadline(&request, timeout_, rank_, "broadcast of the ncclUniqueId");
    // Blocking mode whatever NCCL_COMM_BLOCKING says: every NCCL call has then finished its
    // host-side work when it returns (a non-blocking communicator returns ncclInProgress, and a
    // done event recorded after it could complete before the collective was even enqueued).
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 1;
    NCCL_CHECK(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config));
    stream_ = std::make_unique<c10::cuda::CUDAStream>(
        c10::cuda::getStreamFromPool(/*isHighPriority=*/true, static_cast<c10::DeviceIndex>(device)));
  }
  ~NcclCommunicator() override {
    if (!comm_ || aborted_) return;
    // Unwinding from an error (this rank's own, or a peer's timeout): ncclCommDestroy can wait
    // forever for collectives the peers will never join, and the error would never be printed.
    // Abort instead, as PyTorch's ProcessGroupNCCL does.
    if (std::uncaught_exceptions() > 0) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  // Tensors elsewhere than a contiguous cuda:<device> tensor (the trainer's CPU flags and sums)
  // go through a Staged copy on the device, written back when the work completes.
  std::unique_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) override {
    const std::string what = describe_collective("all_reduce", sequence_++, tensor);
    Staged staged(tensor, cuda_device());
    const at::Tensor t = staged.buffer();
    return launch(t, what, std::move(staged), [&](cudaStream_t s) {
      NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                               op == ReduceOp::kAvg ? ncclAvg : ncclSum, comm_, s));
    });
  }

  void broadcast(at::Tensor tensor, int root) override {
    const std::string what = describe_collective("broadcast", sequence_++, tensor);
    Staged staged(tensor, cuda_device());
    const at::Tensor t = staged.buffer();
    launch(t, what, std::move(staged), [&](cudaStream_t s) {
      NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), root,
                               comm_, s));
    })->wait();
  }

  at::Tensor all_gather(const at::Tensor& tensor) override {
    at::Tensor t = tensor.to(cuda_device()).contiguous();
    std::vector<int64_t> shape{size_};
    for (auto d : t.sizes()) shape.push_back(d);
    at::Tensor out = at::empty(shape, t.options());
    const std::string what = describe_collective("all_gather", sequence_++, t);
    launch(out, what, std::nullopt, [&](cudaStream_t s) {
      c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), *stream_);
      NCCL_CHECK(ncclAllGather(t.data_ptr(), out.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                               comm_, s));
    })->wait();
    return out.to(tensor.device());
  }

  void barrier() override {
    at::Tensor one = at::ones({1}, at::TensorOptions().device(cuda_device()));
    all_reduce(one, ReduceOp::kSum);
  }

  // Called by NcclWork: throws (after aborting) on an asynchronous NCCL error or the deadline.
  void check_health(const std::string& what, Clock::time_point start) {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(comm_, &async);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    std::ostringstream msg;
    if (async != ncclSuccess && async != ncclInProgress) {
      abort();
      msg << "[rank " << rank_ << "] " << what << " failed after " << s << " s: NCCL error "
          << ncclGetErrorString(async);
      throw Error(msg.str());
    }
    if (Clock::now() - start > timeout_) {
      abort();
      msg << "[rank " << rank_ << "] " << what << " timed out after " << s
          << " s waiting for peers (a rank died, hangs, or issued a different collective); "
             "NCCL communicator aborted; raise dist.timeout_s if a step legitimately takes longer";
      throw Error(msg.str());
    }
  }

 private:
  at::Device cuda_device() const { return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_)); }

  // Orders the communication stream after the current stream, runs `issue` on it, records a
  // done event, and keeps `t`'s memory alive for the communication stream.
  template <typename Issue>
  std::unique_ptr<Work> launch(const at::Tensor& t, const std::string& what, std::optional<Staged> staged,
                               Issue issue) {
    DDP_CHECK(!aborted_, what << ": the NCCL communicator was aborted by an earlier error");
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    CudaEvent ready;
    CUDA_CHECK(cudaEventRecord(
        ready.get(), c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream()));
    CUDA_CHECK(cudaStreamWaitEvent(stream_->stream(), ready.get(), 0));
    issue(stream_->stream());
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), *stream_);
    auto done = std::make_unique<CudaEvent>();
    CUDA_CHECK(cudaEventRecord(done->get(), stream_->stream()));
    return std::make_unique<NcclWork>(this, std::move(done), what, std::move(staged));
  }

  void abort() {
    if (!aborted_) ncclCommAbort(comm_);
    aborted_ = true;
  }

  int device_;
  std::chrono::milliseconds timeout_;
  int rank_ = 0;
  int size_ = 1;
  int64_t sequence_ = 0;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
  std::unique_ptr<c10::cuda::CUDAStream> stream_;
};

bool NcclWork::test() {
  if (finished_) return true;
  const cudaError_t rc = cudaEventQuery(done_->get());
  if (rc == cudaSuccess) {
    if (staged_) staged_->finish();
    return finished_ = true;
  }
  DDP_CHECK(rc == cudaErrorNotReady, what_ << ": " << cudaGetErrorString(rc));
  comm_->check_health(what_, start_);
  return false;
}

// Polls the done event (bounded by the deadline inside test()). The compute stream is not made
// to wait at launch, which would serialise backward behind the all-reduce; by the time wait()
// returns the result is complete, so the kernels queued after it read the reduced values.
void NcclWork::wait() {
  for (int64_t spins = 0; !test(); ++spins) {
    if (spins > 100) sched_yield();
  }
}

}  // namespace

bool nccl_built() { return true; }

std::string nccl_version() {
  int v = 0;
  ncclGetVersion(&v);
  std::ostringstream s;
  s << v / 10000 << "." << (v / 100) % 100 << "." << v % 100 << " (compiled " << NCCL_MAJOR << "."
    << NCCL_MINOR << "." << NCCL_PATCH << ")";
  return s.str();
}

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device,
                                                     std::chrono::milliseconds timeout) {
  int count = 0;  // cudaGetDeviceCount leaves it untouched on error (no driver).
  if (cudaGetDeviceCount(&count) != cudaSuccess || count <= device) {
    throw InputError("dist.backend=nccl needs a CUDA GPU for this rank (cuda:" + std::to_string(device) +
                     ") but " + std::to_string(count) + " are usable; use dist.backend=mpi or run on GPUs");
  }
  return std::make_unique<NcclCommunicator>(comm, device, timeout);
}

}  // namespace ddp
