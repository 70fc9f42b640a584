# Built by scripts/build-native.js, which finds libtorch and passes its paths in
# the TORCH_CPU_* environment variables (defaults: Debian's libtorch-dev). The c10d
# target (data-parallel training) is built only where Gloo's headers are (libgloo-dev).
{
  "variables": {
    "torch_include%": "<!(node -p \"process.env.TORCH_CPU_INCLUDE || '/usr/include'\")",
    "torch_lib%": "<!(node -p \"process.env.TORCH_CPU_LIB || '/usr/lib/x86_64-linux-gnu'\")",
    "torch_cxx11_abi%": "<!(node -p \"process.env.TORCH_CPU_CXX11_ABI || '1'\")",
    "with_c10d%": "<!(node -p \"process.env.TORCH_C10D || '0'\")"
  },
  "target_defaults": {
    "include_dirs": ["<(torch_include)", "<(torch_include)/torch/csrc/api/include"],
    "defines": ["NAPI_VERSION=8", "_GLIBCXX_USE_CXX11_ABI=<(torch_cxx11_abi)"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
    "libraries": ["-L<(torch_lib)", "-ltorch_cpu", "-lc10", "-Wl,-rpath,<(torch_lib)"]
  },
  "targets": [
    {
      "target_name": "torch_cpu",
      "sources": ["src/addon.cc", "src/kernels.cc", "src/output_slot.cc"]
    }
  ],
  "conditions": [
    ["with_c10d==1", {
      "targets": [
        {
          "target_name": "densenet_c10d",
          "sources": ["src/c10d.cc"],
          "defines": ["USE_C10D_GLOO"]
        }
      ]
    }]
  ]
}
