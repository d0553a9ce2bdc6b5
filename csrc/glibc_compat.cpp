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

// glibc 2.34 moved libdl, libpthread and librt into libc, each function with a new version, so a link here binds
// every call to them to GLIBC_2.34: dlopen and dlsym (the CUDA backend looks up torch's CUDA library with them,
// cuda/runtime.cpp), and in a CUDA build the static CUDA runtime's threads, locks and shared memory. Each gets a
// hidden trampoline of its own name that jumps to the old version of the function, which libc still exports (and
// which glibc 2.28 has in libdl, libpthread and librt, loaded with torch): whatever the signature, the arguments
// pass through untouched.
#define TC_OLD_GLIBC(name, version)                                  \
  __asm__(".text\n.symver torchconv_old_" #name ", " #name "@" version \
          "\n.globl " #name "\n.hidden " #name "\n.type " #name ", @function\n" #name \
          ":\n\tjmp torchconv_old_" #name "@PLT\n.size " #name ", .-" #name "\n");
TC_OLD_GLIBC(dlopen, "GLIBC_2.2.5")
TC_OLD_GLIBC(dlsym, "GLIBC_2.2.5")
#ifdef TORCHCONV_WITH_CUDA
TC_OLD_GLIBC(dlclose, "GLIBC_2.2.5")
TC_OLD_GLIBC(dlerror, "GLIBC_2.2.5")
TC_OLD_GLIBC(dlmopen, "GLIBC_2.3.4")
TC_OLD_GLIBC(dlvsym, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_condattr_setpshared, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_create, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_detach, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_getspecific, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_join, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_key_create, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_key_delete, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_kill, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_mutex_trylock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_mutexattr_destroy, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_mutexattr_init, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_mutexattr_setpshared, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_mutexattr_settype, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_destroy, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_init, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_rdlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_timedrdlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_timedwrlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_tryrdlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_trywrlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_unlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlock_wrlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlockattr_destroy, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlockattr_init, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_rwlockattr_setpshared, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_setspecific, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_spin_destroy, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_spin_init, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_spin_lock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_spin_trylock, "GLIBC_2.2.5")
TC_OLD_GLIBC(pthread_spin_unlock, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_destroy, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_init, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_post, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_timedwait, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_trywait, "GLIBC_2.2.5")
TC_OLD_GLIBC(sem_wait, "GLIBC_2.2.5")
TC_OLD_GLIBC(shm_open, "GLIBC_2.2.5")
TC_OLD_GLIBC(shm_unlink, "GLIBC_2.2.5")
#endif
