#include "ddp/dist/mpi_communicator.h"

#include <ATen/ATen.h>
#include <sched.h>

#include <sstream>

#include "ddp/core/check.h"
#include "ddp/dist/mpi_check.h"

namespace ddp {
namespace {

using Clock = std::chrono::steady_clock;

class MpiWork : public Work {
 public:
  MpiWork(Staged staged, MPI_Request request, ReduceOp op, int world, int rank,
          std::chrono::milliseconds timeout, std::string what)
      : staged_(std::move(staged)),
        request_(request),
        op_(op),
        world_(world),
        rank_(rank),
        timeout_(timeout),
        what_(std::move(what)) {}

  void wait() override {
    if (done_) return;
    wait_with_deadline(&request_, timeout_, rank_, what_);
    complete();
  }

  bool test() override {
    if (done_) return true;
    int flag = 0;
    MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    if (flag) complete();
    return done_;
  }

 private:
  void complete() {
    done_ = true;
    // Scale after the wait: dividing before the reduction completes is a classic bug.
    if (op_ == ReduceOp::kAvg && world_ > 1) staged_.buffer().div_(world_);
    staged_.finish();
  }

  Staged staged_;
  MPI_Request request_;
  ReduceOp op_;
  int world_;
  int rank_;
  std::chrono::milliseconds timeout_;
  std::string what_;
  bool done_ = false;
};

// MPI has no 16-bit float types: they travel as MPI_UINT16_T and are summed by user-defined
// operations that add in float and round back.
template <typename T>
void sum_16bit(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = static_cast<T>(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

MPI_Op sum_op(const at::Tensor& t) {
  static MPI_Op bf16 = MPI_OP_NULL, fp16 = MPI_OP_NULL;  // Created once, after MPI_Init.
  if (t.scalar_type() == at::kBFloat16) {
    if (bf16 == MPI_OP_NULL) MPI_CHECK(MPI_Op_create(&sum_16bit<c10::BFloat16>, 1, &bf16));
    return bf16;
  }
  if (t.scalar_type() == at::kHalf) {
    if (fp16 == MPI_OP_NULL) MPI_CHECK(MPI_Op_create(&sum_16bit<c10::Half>, 1, &fp16));
    return fp16;
  }
  return MPI_SUM;
}

}  // namespace

MPI_Datatype mpi_datatype(const at::Tensor& tensor) {
  switch (tensor.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kBFloat16:
    case at::kHalf:
      return MPI_UINT16_T;  // Summed by sum_op().
    default:
      break;
  }
  DDP_CHECK(false, "MPI communicator cannot reduce dtype "
                       << tensor.dtype() << "; use float32/float64/bfloat16/float16/int32/int64/uint8");
  return MPI_DATATYPE_NULL;
}

void wait_with_deadline(MPI_Request* request, std::chrono::milliseconds timeout, int rank,
                        const std::string& what) {
  const auto start = Clock::now();
  int flag = 0;
  for (int64_t spins = 0;; ++spins) {
    MPI_CHECK(MPI_Test(request, &flag, MPI_STATUS_IGNORE));
    if (flag) return;
    // Yield after a short spin so oversubscribed ranks (more ranks than cores) make progress.
    if (spins > 200) sched_yield();
    if ((spins & 63) == 0 && Clock::now() - start > timeout) {
      const double s = std::chrono::duration<double>(Clock::now() - start).count();
      std::ostringstream msg;
      msg << "[rank " << rank << "] " << what << " timed out after " << s
          << " s waiting for peers (a rank died, hangs, or issued a different collective); "
             "raise dist.timeout_s if a step legitimately takes longer";
      // The request cannot be completed any more; the caller aborts the job.
      throw Error(msg.str());
    }
  }
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::chrono::milliseconds timeout)
    : comm_(comm), timeout_(timeout) {
  MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

std::unique_ptr<Work> MpiCommunicator::all_reduce_async(at::Tensor tensor, ReduceOp op) {
  const int64_t seq = sequence_++;
  Staged staged(tensor, at::kCPU);
  const at::Tensor& host = staged.buffer();
  DDP_CHECK(host.numel() <= INT32_MAX, "tensor too large for one MPI call");
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(host.numel()), mpi_datatype(host),
                           sum_op(host), comm_, &request));
  return std::make_unique<MpiWork>(std::move(staged), request, op, size_, rank_, timeout_,
                                   describe_collective("all_reduce", seq, tensor));
}

void MpiCommunicator::broadcast(at::Tensor tensor, int root) {
  const int64_t seq = sequence_++;
  Staged staged(tensor, at::kCPU);
  const at::Tensor& host = staged.buffer();
  MPI_Request request;
  MPI_CHECK(
      MPI_Ibcast(host.data_ptr(), static_cast<int>(host.numel()), mpi_datatype(host), root, comm_, &request));
  wait_with_deadline(&request, timeout_, rank_, describe_collective("broadcast", seq, tensor));
  staged.finish();
}

at::Tensor MpiCommunicator::all_gather(const at::Tensor& tensor) {
  const int64_t seq = sequence_++;
  at::Tensor send = tensor.to(at::kCPU).contiguous();
  std::vector<int64_t> shape{size_};
  for (auto d : tensor.sizes()) shape.push_back(d);
  at::Tensor out = at::empty(shape, send.options());
  MPI_Request request;
  MPI_CHECK(MPI_Iallgather(send.data_ptr(), static_cast<int>(send.numel()), mpi_datatype(send),
                           out.data_ptr(), static_cast<int>(send.numel()), mpi_datatype(send), comm_,
                           &request));
  wait_with_deadline(&request, timeout_, rank_, describe_collective("all_gather", seq, tensor));
  return out.to(tensor.device());
}

void MpiCommunicator::barrier() {
  const int64_t seq = sequence_++;
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(comm_, &request));
  wait_with_deadline(&request, timeout_, rank_, "barrier #" + std::to_string(seq));
}

}  // namespace ddp
