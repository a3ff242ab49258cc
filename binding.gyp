{
  # The moe-tune native kernels (Node-API, C++17). Built by `npm install` through
  # scripts/build-addon.mjs; the output is build/Release/moe_tune_native.node.
  # -march=native: the addon is compiled on the machine that runs it. No -ffast-math: the
  # kernels keep IEEE semantics so they agree with the js reference backend.
  "targets": [
    {
      "target_name": "moe_tune_native",
      "sources": [
        "native/src/adamw.cc",
        "native/src/attention.cc",
        "native/src/binding.cc",
        "native/src/cross_entropy.cc",
        "native/src/elementwise.cc",
        "native/src/gemm.cc",
        "native/src/gemm_pack.cc",
        "native/src/gemm_skinny.cc",
        "native/src/gemv.cc",
        "native/src/indexing.cc",
        "native/src/nf4_gemm.cc",
        "native/src/nf4_skinny.cc",
        "native/src/reduce.cc",
        "native/src/rmsnorm.cc",
        "native/src/rope.cc",
        "native/src/routing.cc",
        "native/src/softmax.cc",
        "native/src/swiglu.cc",
        "native/src/thread_pool.cc",
        "native/src/weight_load.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O0", "-O1", "-O2", "-ffast-math"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
      "cflags": ["-O3", "-fno-math-errno", "-pthread", "-Wno-unused-function"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["target_arch=='x64' or target_arch=='ia32'", {
          "cflags": ["-march=native", "-mprefer-vector-width=512"]
        }],
        ["target_arch=='arm64' and OS!='mac'", {
          "cflags": ["-mcpu=native"]
        }],
        ["OS=='mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
            "GCC_OPTIMIZATION_LEVEL": "3",
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "OTHER_CFLAGS": ["-fno-math-errno"],
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-fno-math-errno"]
          },
          "conditions": [
            ["target_arch=='x64'", {
              "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-march=native"] }
            }]
          ]
        }]
      ]
    }
  ]
}
