{
  "targets": [
    {
      "target_name": "channel_native",
      "sources": [
        "src/addon.cc",
        "src/channel_core.cc",
        "src/channel_recv.cc",
        "src/channel_batch.cc",
        "src/channel_view.cc",
        "src/doorbell.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node -p \"require('@libipc/shm/include').include_dir\")",
        "include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
