{
  "targets": [
    {
      "target_name": "shm_native",
      "sources": ["src/addon.cc", "src/segment_handle.cc", "src/wait_pool.cc", "src/pid_watch.cc", "src/uring_waiter.cc", "src/tcp_listen.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "include"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["src/addon.cc", "src/segment_handle.cc", "src/wait_pool.cc", "src/pid_watch.cc", "src/uring_waiter.cc", "src/tcp_listen.cc"], "sources": ["src/unsupported.cc"] }]
      ]
    }
  ]
}
