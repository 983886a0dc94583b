// Communicator over MPI for CPU tensors (device tensors are staged through host memory).
//
// Collectives are MPI's non-blocking ones (MPI_Iallreduce, ...) completed by polling MPI_Test
// against a deadline, so a peer that died or never arrives turns into an error after
// `timeout_ms` instead of a hang. Supported dtypes: float32, float64, int32, int64, uint8, and
// bfloat16/float16 (sent as 16-bit words, summed by a user-defined MPI operation).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstdint>

#include "ddp/dist/communicator.h"

namespace ddp {

class MpiCommunicator : public Communicator {
 public:
  // `comm` is borrowed (MPI_COMM_WORLD, MPI_COMM_SELF or a split); it must outlive this object.
  MpiCommunicator(MPI_Comm comm, std::chrono::milliseconds timeout);
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> all_reduce_async(at::Tensor tensor, ReduceOp op) override;
  void broadcast(at::Tensor tensor, int root) override;
  at::Tensor all_gather(const at::Tensor& tensor) override;
  void barrier() override;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds timeout_;
  int64_t sequence_ = 0;  // Collectives issued so far, for error messages.
};

// Maps a tensor dtype to the MPI datatype; throws for dtypes MPI cannot reduce.
MPI_Datatype mpi_datatype(const at::Tensor& tensor);

// Completes `request` or throws after `timeout`, naming `what` (e.g. "all_reduce #12 (4096 B)").
void wait_with_deadline(MPI_Request* request, std::chrono::milliseconds timeout, int rank,
                        const std::string& what);

}  // namespace ddp
