// FastinputCutStrings: the tf.string values of `count` packed leaves of `size` values each, cut out of one blob.
//
// as_tf_dataset's hand-over of packed strings (fastinput/tf_adapter.py, `_cut`): the blob crosses as uint8 through
// DLPack, `offsets` holds each leaf's `size + 1` offsets into it, leaf after leaf. The graph ops that do the same
// (serialize_tensor, substr) make ~1 MB of temporaries a batch on the tabular benchmark, which fault in fresh pages;
// this kernel writes each value once into its output, with no temporary. Built and loaded by fastinput.tf_ops.
#include <cstdint>

#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::tstring;

REGISTER_OP("FastinputCutStrings")
    .Input("blob: uint8")
    .Input("offsets: int64")
    .Attr("count: int >= 1")
    .Attr("size: int >= 0")
    .Output("values: count * string")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      int64_t count = 0, size = 0;
      TF_RETURN_IF_ERROR(c->GetAttr("count", &count));
      TF_RETURN_IF_ERROR(c->GetAttr("size", &size));
      for (int64_t i = 0; i < count; ++i) c->set_output(static_cast<int>(i), c->Vector(size));
      return absl::OkStatus();
    })
    .Doc("The values of `count` leaves of `size` strings each: value j of leaf i is "
         "blob[offsets[i * (size + 1) + j] : offsets[i * (size + 1) + j + 1]].");

// An InvalidArgument status whose message starts with the op's name.
template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat("FastinputCutStrings: ", args...));
}

class CutStringsOp : public OpKernel {
 public:
  explicit CutStringsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("count", &count_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("size", &size_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& blob = ctx->input(0);
    const Tensor& offsets = ctx->input(1);
    OP_REQUIRES(ctx, blob.dims() == 1, Invalid("blob must be a vector, got shape ", blob.shape().DebugString()));
    OP_REQUIRES(ctx, offsets.dims() == 1,
                Invalid("offsets must be a vector, got shape ", offsets.shape().DebugString()));
    // count >= 1 and size >= 0 (the attrs' bounds); count * (size + 1) must not overflow before it is compared.
    const int64_t row = size_ + 1;
    OP_REQUIRES(ctx, row > 0 && count_ <= INT64_MAX / row, Invalid("count * (size + 1) overflows"));
    OP_REQUIRES(ctx, offsets.NumElements() == count_ * row,
                Invalid(offsets.NumElements(), " offsets, expected count * (size + 1) = ", count_ * row));
    // Every offset checked before anything is allocated or copied: ascending within a leaf, inside the blob.
    // tensor_data(): the blob may be unaligned (it comes through DLPack); flat<uint8>() would fail a CHECK.
    const char* data = blob.tensor_data().data();
    const int64_t bytes = blob.NumElements();
    const int64_t* off = offsets.flat<int64_t>().data();
    for (int64_t leaf = 0; leaf < count_; ++leaf) {
      const int64_t* o = off + leaf * row;
      OP_REQUIRES(ctx, o[0] >= 0 && o[size_] <= bytes,
                  Invalid("leaf ", leaf, "'s offsets [", o[0], ", ", o[size_], "] fall outside the blob of ", bytes,
                          " bytes"));
      for (int64_t j = 0; j < size_; ++j) {
        OP_REQUIRES(ctx, o[j] <= o[j + 1],
                    Invalid("leaf ", leaf, "'s offsets decrease at value ", j, " (", o[j], " > ", o[j + 1], ")"));
      }
    }
    for (int64_t leaf = 0; leaf < count_; ++leaf) {
      Tensor* out = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(static_cast<int>(leaf), TensorShape({size_}), &out));
      tstring* values = out->flat<tstring>().data();
      const int64_t* o = off + leaf * row;
      for (int64_t j = 0; j < size_; ++j) values[j].assign(data + o[j], o[j + 1] - o[j]);
    }
  }

 private:
  int64_t count_ = 0;
  int64_t size_ = 0;
};

REGISTER_KERNEL_BUILDER(Name("FastinputCutStrings").Device(::tensorflow::DEVICE_CPU), CutStringsOp);

}  // namespace
