// N-API addon over PyTorch's c10d: a TCPStore rendezvous and a Gloo process group, with
// allreduce, broadcast and barrier on float32 arrays that JavaScript owns. Every call
// blocks until its collective completes (or its timeout passes): a training step is
// sequential, and synchronised BatchNorm needs its moments inside the forward pass.
#include <node_api.h>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace densenet_c10d {
namespace {

struct Group {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
};

class JsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void check(napi_env env, napi_status status, const char* what) {
  if (status != napi_ok) throw JsError(std::string("c10d: ") + what);
}

std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t wanted, void** data) {
  std::vector<napi_value> argv(wanted);
  size_t argc = wanted;
  check(env, napi_get_cb_info(env, info, &argc, argv.data(), nullptr, data), "cannot read the arguments");
  if (argc < wanted) throw JsError("c10d: expected " + std::to_string(wanted) + " arguments, got " + std::to_string(argc));
  return argv;
}

napi_value property(napi_env env, napi_value object, const char* name) {
  napi_value v;
  check(env, napi_get_named_property(env, object, name, &v), name);
  return v;
}

double numberOf(napi_env env, napi_value v, const char* what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw JsError(std::string("c10d: ") + what + " must be a number");
  return d;
}

std::string stringOf(napi_env env, napi_value v, const char* what) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &length) != napi_ok) {
    throw JsError(std::string("c10d: ") + what + " must be a string");
  }
  std::string s(length, '\0');
  napi_get_value_string_utf8(env, v, s.data(), length + 1, &length);
  return s;
}

/** Views (no copies) of a JS array of Float32Arrays as 1-D tensors. */
std::vector<at::Tensor> float32Views(napi_env env, napi_value list) {
  bool isArray = false;
  napi_is_array(env, list, &isArray);
  if (!isArray) throw JsError("c10d: expected an array of Float32Arrays");
  uint32_t n = 0;
  napi_get_array_length(env, list, &n);
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, list, i, &item);
    bool typed = false;
    napi_is_typedarray(env, item, &typed);
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (typed) napi_get_typedarray_info(env, item, &type, &length, &data, nullptr, nullptr);
    if (!typed || type != napi_float32_array) throw JsError("c10d: item " + std::to_string(i) + " is not a Float32Array");
    if (length == 0) continue;
    out.push_back(at::from_blob(data, {static_cast<int64_t>(length)}, at::TensorOptions().dtype(at::kFloat)));
  }
  return out;
}

/** Waits for every work item; a failed collective (a peer gone, a timeout) becomes a JS error. */
void waitAll(std::vector<c10::intrusive_ptr<c10d::Work>>& works, const Group& g, const char* what) {
  for (auto& w : works) {
    try {
      w->wait(g.timeout);
    } catch (const std::exception& e) {
      std::string message = e.what();
      const auto newline = message.find('\n');
      if (newline != std::string::npos) message = message.substr(0, newline);
      throw JsError(std::string(what) + " on rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " failed: " + message);
    }
  }
}

/**
 * One collective per array, all in flight at once, then waits for them: Gloo's collectives take
 * tensors of one size, and the buckets differ.
 */
template <typename Start>
void eachArray(std::vector<at::Tensor>& tensors, const Group& g, const char* what, Start&& start) {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    works.push_back(start(one));
  }
  waitAll(works, g, what);
}

template <typename F>
napi_value guarded(napi_env env, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

Group* groupOf(void* data) {
  auto* g = static_cast<Group*>(data);
  if (!g->pg) throw JsError("c10d: the process group is closed");
  return g;
}

/** An entry point of a group's method: its `argc` arguments and the group, errors thrown to JS. */
template <typename F>
napi_value onGroup(napi_env env, napi_callback_info info, size_t argc, F&& body) {
  return guarded(env, [&] {
    void* data;
    auto argv = args(env, info, argc, &data);
    return body(*groupOf(data), argv);
  });
}

napi_value undefinedValue(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value allreduce(napi_env env, napi_callback_info info) {
  return onGroup(env, info, 2, [&](Group& g, std::vector<napi_value>& argv) {
    const std::string op = stringOf(env, argv[1], "op");
    c10d::AllreduceOptions opts;
    if (op == "sum" || op == "mean") opts.reduceOp = c10d::ReduceOp::SUM;
    else if (op == "max") opts.reduceOp = c10d::ReduceOp::MAX;
    else throw JsError("c10d: allreduce op must be sum, mean or max, got '" + op + "'");
    auto tensors = float32Views(env, argv[0]);
    eachArray(tensors, g, "allreduce", [&](std::vector<at::Tensor>& one) { return g.pg->allreduce(one, opts); });
    if (op == "mean") {
      for (auto& t : tensors) t.div_(static_cast<double>(g.size));
    }
    return undefinedValue(env);
  });
}

napi_value broadcast(napi_env env, napi_callback_info info) {
  return onGroup(env, info, 2, [&](Group& g, std::vector<napi_value>& argv) {
    const int root = static_cast<int>(numberOf(env, argv[1], "root"));
    if (root < 0 || root >= g.size) throw JsError("c10d: broadcast root " + std::to_string(root) + " is not a rank");
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    auto tensors = float32Views(env, argv[0]);
    eachArray(tensors, g, "broadcast", [&](std::vector<at::Tensor>& one) { return g.pg->broadcast(one, opts); });
    return undefinedValue(env);
  });
}

napi_value barrier(napi_env env, napi_callback_info info) {
  return onGroup(env, info, 0, [&](Group& g, std::vector<napi_value>& argv) {
    std::vector<c10::intrusive_ptr<c10d::Work>> works{g.pg->barrier()};
    waitAll(works, g, "barrier");
    return undefinedValue(env);
  });
}

napi_value storeSet(napi_env env, napi_callback_info info) {
  return onGroup(env, info, 2, [&](Group& g, std::vector<napi_value>& argv) {
    const std::string key = stringOf(env, argv[0], "key");
    const std::string value = stringOf(env, argv[1], "value");
    g.store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    return undefinedValue(env);
  });
}

/** The value of a key, waiting for it up to the store's timeout. */
napi_value storeGet(napi_env env, napi_callback_info info) {
  return onGroup(env, info, 1, [&](Group& g, std::vector<napi_value>& argv) {
    const std::string key = stringOf(env, argv[0], "key");
    std::vector<uint8_t> bytes;
    try {
      bytes = g.store->get(key);
    } catch (const std::exception& e) {
      throw JsError("c10d: the store has no key '" + key + "': " + std::string(e.what()).substr(0, 200));
    }
    napi_value out;
    napi_create_string_utf8(env, reinterpret_cast<const char*>(bytes.data()), bytes.size(), &out);
    return out;
  });
}

napi_value closeGroup(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    void* data;
    args(env, info, 0, &data);
    auto* g = static_cast<Group*>(data);
    g->pg.reset();
    g->store.reset();
    return undefinedValue(env);
  });
}

void finalizeGroup(napi_env, void* data, void*) { delete static_cast<Group*>(data); }

std::shared_ptr<::gloo::transport::Device> deviceFor(const std::string& host, const std::string& interface) {
  if (!interface.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  if (host == "127.0.0.1" || host == "localhost") return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

/**
 * createGroup({ host, port, rank, worldSize, timeoutMs, interface }): rank 0 hosts the
 * TCPStore on host:port, every rank connects to it, then the Gloo group forms over it.
 */
napi_value createGroup(napi_env env, napi_callback_info info) {
  return guarded(env, [&] {
    void* unused;
    auto argv = args(env, info, 1, &unused);
    const std::string host = stringOf(env, property(env, argv[0], "host"), "host");
    const int port = static_cast<int>(numberOf(env, property(env, argv[0], "port"), "port"));
    const int rank = static_cast<int>(numberOf(env, property(env, argv[0], "rank"), "rank"));
    const int size = static_cast<int>(numberOf(env, property(env, argv[0], "worldSize"), "worldSize"));
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(numberOf(env, property(env, argv[0], "timeoutMs"), "timeoutMs")));
    const std::string interface = stringOf(env, property(env, argv[0], "interface"), "interface");
    if (size < 1 || rank < 0 || rank >= size) throw JsError("c10d: rank " + std::to_string(rank) + " is not in a world of " + std::to_string(size));
    if (port < 1 || port > 65535) throw JsError("c10d: port " + std::to_string(port) + " is not a TCP port");

    auto g = std::make_unique<Group>();
    g->rank = rank;
    g->size = size;
    g->timeout = timeout;
    c10d::TCPStoreOptions storeOpts;
    storeOpts.port = static_cast<uint16_t>(port);
    storeOpts.isServer = rank == 0;
    storeOpts.numWorkers = static_cast<size_t>(size);
    storeOpts.waitWorkers = true;
    storeOpts.timeout = timeout;
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(host, storeOpts);
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices.push_back(deviceFor(host, interface));
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, size, opts);
    } catch (const std::exception& e) {
      std::string message = e.what();
      const auto newline = message.find('\n');
      if (newline != std::string::npos) message = message.substr(0, newline);
      throw JsError("c10d: rank " + std::to_string(rank) + " could not join the group at " + host + ":" + std::to_string(port) + ": " + message);
    }

    napi_value object;
    napi_create_object(env, &object);
    Group* raw = g.release();
    const std::pair<const char*, napi_callback> methods[] = {
        {"allreduce", allreduce}, {"broadcast", broadcast}, {"barrier", barrier},
        {"storeSet", storeSet},   {"storeGet", storeGet},   {"close", closeGroup},
    };
    for (const auto& [name, fn] : methods) {
      napi_value f;
      napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, raw, &f);
      napi_set_named_property(env, object, name, f);
    }
    check(env, napi_add_finalizer(env, object, raw, finalizeGroup, nullptr, nullptr), "cannot attach the group");
    return object;
  });
}

napi_value init(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "createGroup", NAPI_AUTO_LENGTH, createGroup, nullptr, &f);
  napi_set_named_property(env, exports, "createGroup", f);
  return exports;
}

}  // namespace
}  // namespace densenet_c10d

NAPI_MODULE(NODE_GYP_MODULE_NAME, densenet_c10d::init)
