// oneDNN 2-D convolutions (forward, input gradient, kernel gradient) as XLA FFI handlers.
//
// Why: on x86 CPUs XLA's own convolutions are 2-3x slower than oneDNN's (benchmarks/RESULTS.md,
// "oneDNN convolutions"), and convolutions are almost all of a CNN train step.
//
// Layouts are jaxcnn's: activations NHWC, kernels HWIO with the output channels of group g at
// [g * O/G, (g + 1) * O/G) (XLA's feature_group_count convention). oneDNN is told those layouts
// through explicit strides, picks its own (blocked) kernel layout, and we reorder the kernel into
// and out of it on every call; activations are never reordered.
//
// Each distinct (op, shapes, stride, padding, dilation, groups) builds its primitives once; they
// are kept in a process-wide cache guarded by a mutex (XLA may call from several threads).

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <omp.h>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;

namespace {

enum class Op { kForward = 0, kBackwardData = 1, kBackwardWeights = 2 };

struct Geometry {
  int64_t n, h, w, c;        // input, NHWC
  int64_t kh, kw, ci, co;    // kernel, HWIO (ci = c / groups)
  int64_t oh, ow;            // output spatial size
  int64_t groups;
  memory::dims strides, dilates, pad_l, pad_r;  // dilates are oneDNN's (d - 1)
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc Nhwc(int64_t n, int64_t c, int64_t h, int64_t w) {
  // oneDNN's logical order is (N, C, H, W); the strides describe NHWC memory.
  return memory::desc({n, c, h, w}, memory::data_type::f32, memory::dims{h * w * c, 1, w * c, c});
}

memory::desc Hwio(const Geometry& g) {
  const int64_t og = g.co / g.groups;
  if (g.groups == 1) {
    return memory::desc({g.co, g.ci, g.kh, g.kw}, memory::data_type::f32,
                        memory::dims{1, g.co, g.kw * g.ci * g.co, g.ci * g.co});
  }
  return memory::desc({g.groups, og, g.ci, g.kh, g.kw}, memory::data_type::f32,
                      memory::dims{og, 1, g.co, g.kw * g.ci * g.co, g.ci * g.co});
}

memory::desc AnyWeights(const Geometry& g) {
  const memory::dims dims = g.groups == 1
      ? memory::dims{g.co, g.ci, g.kh, g.kw}
      : memory::dims{g.groups, g.co / g.groups, g.ci, g.kh, g.kw};
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

// One cached convolution: the primitive, and reorders between the user's HWIO kernel and the
// layout the primitive chose (absent when they coincide).
struct Plan {
  dnnl::primitive conv;
  memory::desc src, wei, dst;        // what the primitive expects
  memory::desc scratchpad;           // its working memory, which we provide (see Execute)
  memory::desc user_wei;
  std::unique_ptr<dnnl::reorder> wei_reorder;  // user -> primitive (fwd, bwd data) or back (bwd w)
};

// Scratchpad in user mode: oneDNN's default shares one library-owned buffer between
// primitives, which is only safe when they never run concurrently; XLA may run two
// independent convolutions of one program at once, from different threads.
dnnl::primitive_attr Attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

dnnl::convolution_forward::primitive_desc ForwardDesc(const Geometry& g) {
  return dnnl::convolution_forward::primitive_desc(
      Engine(), dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      Nhwc(g.n, g.c, g.h, g.w), AnyWeights(g), Nhwc(g.n, g.co, g.oh, g.ow), g.strides, g.dilates,
      g.pad_l, g.pad_r, Attr());
}

std::unique_ptr<Plan> MakePlan(Op op, const Geometry& g) {
  auto plan = std::make_unique<Plan>();
  plan->user_wei = Hwio(g);
  plan->src = Nhwc(g.n, g.c, g.h, g.w);
  plan->dst = Nhwc(g.n, g.co, g.oh, g.ow);
  auto fwd = ForwardDesc(g);
  memory::desc wei;
  if (op == Op::kForward) {
    plan->conv = dnnl::convolution_forward(fwd);
    wei = fwd.weights_desc();
    plan->scratchpad = fwd.scratchpad_desc();
  } else if (op == Op::kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, Nhwc(g.n, g.c, g.h, g.w), AnyWeights(g),
        Nhwc(g.n, g.co, g.oh, g.ow), g.strides, g.dilates, g.pad_l, g.pad_r, fwd, Attr());
    plan->conv = dnnl::convolution_backward_data(pd);
    wei = pd.weights_desc();
    plan->scratchpad = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        Engine(), dnnl::algorithm::convolution_direct, Nhwc(g.n, g.c, g.h, g.w), AnyWeights(g),
        Nhwc(g.n, g.co, g.oh, g.ow), g.strides, g.dilates, g.pad_l, g.pad_r, fwd, Attr());
    plan->conv = dnnl::convolution_backward_weights(pd);
    wei = pd.diff_weights_desc();
    plan->scratchpad = pd.scratchpad_desc();
  }
  plan->wei = wei;
  if (wei != plan->user_wei) {
    plan->wei_reorder = op == Op::kBackwardWeights
        ? std::make_unique<dnnl::reorder>(memory(wei, Engine()), memory(plan->user_wei, Engine()))
        : std::make_unique<dnnl::reorder>(memory(plan->user_wei, Engine()), memory(wei, Engine()));
  }
  return plan;
}

Plan& CachedPlan(Op op, const Geometry& g) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::unique_ptr<Plan>> cache;
  std::ostringstream key;
  // oneDNN sizes its work split by the calling thread's OpenMP thread count: part of the key.
  key << static_cast<int>(op) << '/' << omp_get_max_threads();
  for (int64_t v : {g.n, g.h, g.w, g.c, g.kh, g.kw, g.ci, g.co, g.oh, g.ow, g.groups}) key << ',' << v;
  for (const auto* dims : {&g.strides, &g.dilates, &g.pad_l, &g.pad_r})
    for (int64_t v : *dims) key << ';' << v;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[key.str()];
  if (!slot) slot = MakePlan(op, g);
  return *slot;
}

ffi::Error MakeGeometry(ffi::Span<const int64_t> x_dims, ffi::Span<const int64_t> k_dims,
                        ffi::Span<const int64_t> y_dims, ffi::Span<const int64_t> strides,
                        ffi::Span<const int64_t> padding, ffi::Span<const int64_t> dilation,
                        int64_t groups, Geometry* g) {
  if (x_dims.size() != 4 || k_dims.size() != 4 || y_dims.size() != 4 || strides.size() != 2 ||
      padding.size() != 4 || dilation.size() != 2 || groups < 1) {
    return ffi::Error::InvalidArgument("jaxcnn oneDNN conv: expected NHWC/HWIO 2-D operands");
  }
  *g = Geometry{x_dims[0], x_dims[1], x_dims[2], x_dims[3], k_dims[0], k_dims[1], k_dims[2],
                k_dims[3], y_dims[1], y_dims[2], groups,
                {strides[0], strides[1]}, {dilation[0] - 1, dilation[1] - 1},
                {padding[0], padding[2]}, {padding[1], padding[3]}};
  if (g->c != g->ci * groups || g->co % groups) {
    return ffi::Error::InvalidArgument("jaxcnn oneDNN conv: channels do not match groups");
  }
  return ffi::Error::Success();
}

// Working memory for the calling thread, grown as needed and kept (like oneDNN's own
// thread-local scratchpad) so that a train step does not allocate on every call: slot 0 holds
// the primitive's scratchpad, slot 1 the kernel in the primitive's layout (9 MiB for a
// 3x3x512x512 one), which came from a fresh allocation per call before: ResNet-18/CIFAR's
// 59 reorders per train step, 30.7-33.0 -> 28.6-28.9 ms (PyTorch's oneDNN 3.12: 19 ms).
void* ThreadBuffer(int slot, size_t bytes) {
  thread_local std::vector<char> buffers[2];
  std::vector<char>& buffer = buffers[slot];
  constexpr size_t kAlign = 64;
  if (buffer.size() < bytes + kAlign) buffer.resize(bytes + kAlign);
  auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<void*>((address + kAlign - 1) & ~(kAlign - 1));
}

// XLA:CPU runs independent thunks of a program concurrently (a layer's input and kernel
// gradients; a residual block's two branches), each of our calls with an OpenMP team sized
// for all the cores it may use: two at once oversubscribe the cores and each runs at less than
// half speed (ONEDNN_VERBOSE: 1x1 kernel gradients at 2.7x their solo time). A budget of
// cores, taken for the length of a call, keeps the teams within the machine; it never blocks
// on anything but other calls, which never wait on anything, so it cannot deadlock.
class CoreBudget {
 public:
  explicit CoreBudget(int cores) : free_(cores), cores_(cores) {}
  int Acquire(int want) {
    want = want < 1 ? 1 : (want > cores_ ? cores_ : want);
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return free_ >= want; });
    free_ -= want;
    return want;
  }
  void Release(int taken) {
    { std::lock_guard<std::mutex> lock(mutex_); free_ += taken; }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  int free_, cores_;
};

CoreBudget& Cores() {
  static CoreBudget budget(omp_get_num_procs());
  return budget;
}

// Runs `plan` with activations `src`/`dst` (NHWC) and the user's HWIO kernel `user_wei`.
void Execute(Op op, Plan& plan, void* src, void* user_wei, void* dst) {
  dnnl::stream stream(Engine());
  memory scratch_m(plan.scratchpad, Engine(), ThreadBuffer(0, plan.scratchpad.get_size()));
  memory src_m(plan.src, Engine(), src), dst_m(plan.dst, Engine(), dst);
  memory user_m(plan.user_wei, Engine(), user_wei);
  memory wei_m = plan.wei_reorder
      ? memory(plan.wei, Engine(), ThreadBuffer(1, plan.wei.get_size())) : user_m;
  if (op != Op::kBackwardWeights && plan.wei_reorder) plan.wei_reorder->execute(stream, user_m, wei_m);
  if (op == Op::kForward) {
    plan.conv.execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m},
                               {DNNL_ARG_DST, dst_m}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
  } else if (op == Op::kBackwardData) {
    plan.conv.execute(stream, {{DNNL_ARG_DIFF_SRC, src_m}, {DNNL_ARG_WEIGHTS, wei_m},
                               {DNNL_ARG_DIFF_DST, dst_m}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
  } else {
    plan.conv.execute(stream, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_DIFF_WEIGHTS, wei_m},
                               {DNNL_ARG_DIFF_DST, dst_m}, {DNNL_ARG_SCRATCHPAD, scratch_m}});
    if (plan.wei_reorder) plan.wei_reorder->execute(stream, wei_m, user_m);
  }
  stream.wait();
}

template <Op op>
ffi::Error Run(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
               ffi::Span<const int64_t> strides, ffi::Span<const int64_t> padding,
               ffi::Span<const int64_t> dilation, int64_t groups, int64_t threads) {
  // Operand order per op: forward (x, k) -> y; backward data (dy, k) -> dx;
  // backward weights (x, dy) -> dk.
  for (auto type : {a.element_type(), b.element_type(), out->element_type()}) {
    if (type != ffi::DataType::F32) {
      return ffi::Error::InvalidArgument("jaxcnn oneDNN conv: only float32 is supported");
    }
  }
  Geometry g;
  ffi::Error error = op == Op::kForward
      ? MakeGeometry(a.dimensions(), b.dimensions(), out->dimensions(), strides, padding, dilation,
                     groups, &g)
      : op == Op::kBackwardData
      ? MakeGeometry(out->dimensions(), b.dimensions(), a.dimensions(), strides, padding, dilation,
                     groups, &g)
      : MakeGeometry(a.dimensions(), out->dimensions(), b.dimensions(), strides, padding, dilation,
                     groups, &g);
  if (error.failure()) return error;
  // OpenMP threads for this call (jaxcnn/_native/onednn.py picks them): all cores for a
  // one-device program, fewer when several devices' programs share the cores (pmap).
  if (threads > 0 && omp_get_max_threads() != threads) omp_set_num_threads(static_cast<int>(threads));
  struct Held {
    int taken;
    ~Held() { Cores().Release(taken); }
  } held{Cores().Acquire(omp_get_max_threads())};
  try {
    Plan& plan = CachedPlan(op, g);
    if (op == Op::kForward) {
      Execute(op, plan, a.untyped_data(), b.untyped_data(), out->untyped_data());
    } else if (op == Op::kBackwardData) {
      Execute(op, plan, out->untyped_data(), b.untyped_data(), a.untyped_data());
    } else {
      Execute(op, plan, a.untyped_data(), out->untyped_data(), b.untyped_data());
    }
  } catch (const dnnl::error& e) {
    return ffi::Error::Internal(std::string("jaxcnn oneDNN conv: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

#define JAXCNN_CONV_HANDLER(name, op)                                        \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, Run<op>,                               \
                                ffi::Ffi::Bind()                             \
                                    .Arg<ffi::AnyBuffer>()                   \
                                    .Arg<ffi::AnyBuffer>()                   \
                                    .Ret<ffi::AnyBuffer>()                   \
                                    .Attr<ffi::Span<const int64_t>>("strides") \
                                    .Attr<ffi::Span<const int64_t>>("padding") \
                                    .Attr<ffi::Span<const int64_t>>("dilation") \
                                    .Attr<int64_t>("groups")                 \
                                    .Attr<int64_t>("threads"));

JAXCNN_CONV_HANDLER(JaxcnnConvForward, Op::kForward)
JAXCNN_CONV_HANDLER(JaxcnnConvBackwardData, Op::kBackwardData)
JAXCNN_CONV_HANDLER(JaxcnnConvBackwardWeights, Op::kBackwardWeights)

extern "C" const char* JaxcnnOnednnVersion() {
  static std::string version = [] {
    const dnnl_version_t* v = dnnl_version();
    std::ostringstream s;
    s << v->major << '.' << v->minor << '.' << v->patch;
    return s.str();
  }();
  return version.c_str();
}
