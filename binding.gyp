{
  "targets": [
    {
      "target_name": "vgpio_native",
      "sources": [
        "native/module.c",
        "native/napi.c",
        "native/sockets.c",
        "native/fds.c",
        "native/memory.c",
        "native/poller.c",
        "native/affinity.c",
        "native/chardev.c",
        "native/timer.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"]
        }
      }
    },
    {
      "target_name": "vgpio_eventfd_floor",
      "type": "executable",
      "sources": ["native/eventfd-floor.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "vgpio_bench_frontend",
      "type": "executable",
      "sources": ["native/bench-frontend.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "vgpio_timerfd_floor",
      "type": "executable",
      "sources": ["native/timerfd-floor.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
