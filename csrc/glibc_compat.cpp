// What lets one binary load on every glibc from 2.28 on, as torch's own wheels do (manylinux_2_28:
// scripts/build_wheels.sh). libstdc++ is linked in (-static-libstdc++, CMakeLists.txt), so the binary asks no GLIBCXX
// version newer than the system's; the glibc functions that the linked-in libstdc++ (built against this machine's
// glibc) takes from versions after 2.28 are defined here, hidden, on older entry points or system calls.
#include <cerrno>
#include <cstddef>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" {

// libstdc++ 11+ reads glibc 2.32's flag to skip atomics in a single-threaded program; 0 means "maybe threaded",
// so reference counts stay atomic.
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// glibc 2.33 made fstat64 an exported function (before, an inline wrapper of __fxstat64); the system call is the
// same on x86-64, where struct stat64 is the kernel's struct stat.
__attribute__((visibility("hidden"))) int fstat64(int fd, struct stat64* buf) {
  return static_cast<int>(syscall(SYS_fstat, fd, buf));
}

// glibc 2.34 moved pthread_once into libc with a new version; the GLIBC_2.2.5 one is the same function.
int torchconv_pthread_once_2_2_5(int* once, void (*init)(void));
__asm__(".symver torchconv_pthread_once_2_2_5,pthread_once@GLIBC_2.2.5");
__attribute__((visibility("hidden"))) int pthread_once(int* once, void (*init)(void)) {
  return torchconv_pthread_once_2_2_5(once, init);
}

// glibc 2.36's arc4random, behind libstdc++'s std::random_device (torchconv draws no random numbers): getrandom,
// from glibc 2.25, as a system call.
__attribute__((visibility("hidden"))) unsigned arc4random(void) {
  unsigned value = 0;
  for (int tries = 0; tries < 100; ++tries) {
    const long got = syscall(SYS_getrandom, &value, sizeof value, 0);
    if (got == static_cast<long>(sizeof value) || (got < 0 && errno != EINTR)) break;
  }
  return value;
}

}  // extern "C"
