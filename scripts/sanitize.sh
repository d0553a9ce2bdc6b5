#!/bin/sh
# ASan + UBSan run of torchconv: `sh scripts/sanitize.sh`, from any directory, in the environment where the
# README's test install command was run (torch, numpy, pybind11, scikit-build-core, cmake, ninja, pytest and
# hypothesis importable by `python`; torchconv itself need not be installed).
#
# 1. Builds torchconv at -O1 -g1 with -fsanitize=address,undefined into build/asan and installs it into a throwaway
#    venv, build/asan-venv, which sees the active environment's packages through a .pth file: the normal install,
#    the active venv and build/dev are never touched. scripts/sanitize.cmake (a CMake hook) lowers CMakeLists.txt's
#    own -O3/-O2 to -O1, and builds the per-ISA kernel copies that will not run here without sanitizers at -O0.
# 2. Runs, with the sanitizer runtimes preloaded into python, tests/test_conformance.py, test_errors.py,
#    test_autograd.py, test_kernels.py, test_cuda_emulation.py (the emulated CUDA kernels) and (where the file
#    exists) `tests/fuzz.py --seeds N`, each in its own process, under each kernel ISA asked for that this CPU has
#    (TORCHCONV_CPU_CAPABILITY).
#    A fuzz.py child that a sanitizer ends is a "crash" defect there, and the child's stderr (UBSan's report) is
#    fuzz.py's; so each crash's reproducer line (`python tests/fuzz.py --case ...`) is run again here, in-process.
# 3. Prints each distinct sanitizer report (headline, first frames, the runs it came up in; by
#    scripts/sanitize_reports.py) and a table of the runs; exits 1 on any sanitizer report, test failure or
#    timeout, 2 when it cannot build or start.
#
# Every report ends its process (halt_on_error), as an ASan error always does; UBSan's checks are compiled
# recoverable, so SANITIZE_UBSAN_CONTINUE=1 lets a process go on past UBSan reports (each printed once a source
# location) to what follows them, e.g. an out-of-bounds access after an integer overflow.
#
# Knobs (environment):
#   SANITIZE_ISAS="default avx2 avx512"  kernel copies to run (those the CPU lacks are skipped, and not instrumented)
#   SANITIZE_SUITES="conformance errors autograd kernels cuda_emulation fuzz"
#   FUZZ_SEEDS=100                        seeds for tests/fuzz.py
#   SANITIZE_REV=<commit>                 build a snapshot of that commit (git archive, in build/asan-src) instead of
#                                         the working tree, e.g. while someone is editing csrc/; tests/ stays the
#                                         working tree's
#   SANITIZE_SRC=<dir>                    build that source tree instead (a copy of the project)
#   SANITIZE_SKIP_BUILD=1                 reuse the last build as it is
#   SANITIZE_PYTEST_ARGS="..."            more pytest arguments, e.g. -k "not gradgradcheck" (the slowest tests)
#   SANITIZE_TIMEOUT=3600                 seconds per run
#   SANITIZE_FLAGS="..."                  the compile flags (default below)
#   SANITIZE_FRAMES=8                     stack frames shown per report
#   SANITIZE_UBSAN_CONTINUE=1             UBSan reports do not end the process (see above)
#   FUZZ_REPROS=10                        fuzz crashes run again for their report, per run
#   PYTHON (default python, else python3), CXX (default g++)
# Logs: build/asan.log (the build), build/asan-logs/<isa>-<suite>.log (a run's output: UBSan reports too),
# <isa>-<suite>.san.<pid> (ASan reports: one file per process that had one; fuzz.py's children are processes of
# their own) and <isa>-fuzz-repro<i>.log (a fuzz crash run again).

set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd -P)
start=$(date +%s)

BUILD_DIR=$ROOT/build/asan
VENV=$ROOT/build/asan-venv
LOGS=$ROOT/build/asan-logs
ISAS=${SANITIZE_ISAS:-default avx2 avx512}
SUITES=${SANITIZE_SUITES:-conformance errors autograd kernels cuda_emulation fuzz}
FUZZ_SEEDS=${FUZZ_SEEDS:-100}
RUN_TIMEOUT=${SANITIZE_TIMEOUT:-3600}
FRAMES=${SANITIZE_FRAMES:-8}
FUZZ_REPROS=${FUZZ_REPROS:-10}
UBSAN_HALT=1
[ "${SANITIZE_UBSAN_CONTINUE:-0}" = 1 ] && UBSAN_HALT=0
CXX=${CXX:-g++}

# -fno-sanitize=vptr: UBSan's vptr check needs RTTI of every polymorphic type it meets (pybind11's, torch's
# headers'); it adds nothing for torchconv, which has no class hierarchy of its own, so it is left out.
# UBSan's checks stay recoverable (no -fno-sanitize-recover): UBSAN_OPTIONS=halt_on_error=1 below ends the process
# at the first report all the same, and SANITIZE_UBSAN_CONTINUE=1 can let it go on, with no rebuild.
# --param=asan-instrumentation-with-call-threshold=0: ASan checks are calls, not inline code; this cuts the compile
# time of the unrolled kernels (csrc/cpu/direct/) by more than half (600 s to 245 s of CPU for one ISA copy).
SAN_FLAGS=${SANITIZE_FLAGS:-"-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer --param=asan-instrumentation-with-call-threshold=0"}
SAN_LINK="-fsanitize=address,undefined"
# -g1: line tables and inlined frames, enough for every frame's file:line; full -g costs much compile time here.
DEBUG_FLAGS="-g1"

say() { printf '== %s\n' "$*"; }
die() { printf 'sanitize.sh: %s\n' "$*" >&2; exit 2; }

# --- the interpreter, the compiler and the CPU -------------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif command -v python >/dev/null 2>&1; then PY=python
else PY=python3
fi
command -v "$PY" >/dev/null 2>&1 || die "no python ($PY) on PATH: activate the venv the README's install ran in"
"$PY" -c "import torch, numpy, pybind11, scikit_build_core, pytest, hypothesis" 2>/dev/null ||
  die "$PY cannot import torch, numpy, pybind11, scikit_build_core, pytest and hypothesis: run the README's test install command in this environment first"
command -v "$CXX" >/dev/null 2>&1 || die "no C++ compiler $CXX"
LIBASAN=$("$CXX" -print-file-name=libasan.so)
LIBUBSAN=$("$CXX" -print-file-name=libubsan.so)
[ -e "$LIBASAN" ] && [ -e "$LIBUBSAN" ] ||
  die "$CXX has no libasan.so / libubsan.so (Debian: apt-get install libasan8 libubsan1)"

# The ISAs this CPU has, by the rules of csrc/cpu/isa/cpu_capability.cpp (checked again after the build).
if [ -r /proc/cpuinfo ]; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo)
  has() { for f in "$@"; do case " $flags " in *" $f "*) ;; *) return 1 ;; esac; done; }
  CPU_ISAS=default
  has avx2 fma && CPU_ISAS="$CPU_ISAS avx2" &&
    has avx512f avx512vl avx512bw avx512dq bmi2 && CPU_ISAS="$CPU_ISAS avx512"
else
  CPU_ISAS="default avx2 avx512"  # unknown: instrument every copy, and let the module say what runs
fi
RUN_ISAS=""
for isa in $ISAS; do
  case $isa in default|avx2|avx512) ;; *) die "unknown ISA $isa (default, avx2, avx512)" ;; esac
  case " $CPU_ISAS " in *" $isa "*) RUN_ISAS="$RUN_ISAS $isa" ;; esac
done
UNUSED_ISAS=""
for isa in default avx2 avx512; do
  case " $RUN_ISAS " in *" $isa "*) ;; *) UNUSED_ISAS="${UNUSED_ISAS:+$UNUSED_ISAS;}$isa" ;; esac
done

# --- 1. the throwaway venv and the build -------------------------------------------------------------------------
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ ! -x "$VENV/bin/python" ] ||
   [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$PYVER" ]; then
  say "creating ${VENV#$ROOT/} (python $PYVER)"
  rm -rf "$VENV"
  "$PY" -m venv --without-pip "$VENV" || die "python -m venv failed"
fi
VENV_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# The active environment's site-packages as plain sys.path entries after the venv's own, so the venv's torchconv
# wins and torch, pip, pytest, ... come from the active environment. Plain paths: that environment's own .pth
# files (an editable torchconv's import hook, say) are not run.
"$PY" -c 'import sysconfig, site
p = sysconfig.get_paths(); seen = []
for d in [p["purelib"], p["platlib"]] + (site.getsitepackages() if hasattr(site, "getsitepackages") else []):
    if d not in seen: seen.append(d); print(d)' > "$VENV_SITE/_torchconv_sanitize_parent.pth" ||
  die "cannot write the .pth"

# The source: the working tree, SANITIZE_SRC, or with SANITIZE_REV a snapshot of that commit.
SRC=$ROOT
if [ -n "${SANITIZE_SRC:-}" ]; then
  SRC=$(cd "$SANITIZE_SRC" && pwd -P) && [ -f "$SRC/CMakeLists.txt" ] || die "SANITIZE_SRC=$SANITIZE_SRC has no CMakeLists.txt"
  say "source: $SRC"
elif [ -n "${SANITIZE_REV:-}" ]; then
  rev=$(git -C "$ROOT" rev-parse --verify "$SANITIZE_REV^{commit}") || die "SANITIZE_REV=$SANITIZE_REV is no commit"
  SRC=$ROOT/build/asan-src
  if [ "$(cat "$SRC/.rev" 2>/dev/null)" != "$rev" ]; then  # the same commit is kept, so ninja rebuilds nothing
    rm -rf "$SRC" && mkdir -p "$SRC" && git -C "$ROOT" archive "$rev" | tar -x -C "$SRC" || die "git archive failed"
    echo "$rev" > "$SRC/.rev"
  fi
  say "source: $SANITIZE_REV ($rev), snapshot in ${SRC#$ROOT/}"
fi
# A build dir configured for the other source is started afresh (CMake refuses a second source for one cache).
if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$SRC" "$BUILD_DIR/CMakeCache.txt"; then
  rm -rf "$BUILD_DIR"
fi

if [ "${SANITIZE_SKIP_BUILD:-0}" = 1 ] && [ -f "$BUILD_DIR/sanitized-isas" ]; then
  say "build skipped (SANITIZE_SKIP_BUILD=1)"
else
  say "building with $SAN_FLAGS -O1 $DEBUG_FLAGS into ${BUILD_DIR#$ROOT/} (log: ${BUILD_DIR#$ROOT/}.log);" \
      "kernel copies instrumented:${RUN_ISAS:- none}"
  mkdir -p "$ROOT/build"
  rm -f "$BUILD_DIR/sanitized-isas"
  b0=$(date +%s)
  # Debug: -g (here -g1) and none of pybind11's LTO or -Os; scripts/sanitize.cmake sets -O1 for every target.
  # pip runs on the venv's python (pip itself comes from the active environment); --no-deps: the dependencies
  # are the active environment's.
  if ! "$VENV/bin/python" -m pip install --no-build-isolation --no-deps --no-cache-dir --force-reinstall \
      --disable-pip-version-check -v \
      -Cbuild-dir="$BUILD_DIR" -Ccmake.build-type=Debug -Cinstall.strip=false -Cbuild.verbose=true \
      -Ccmake.define.CMAKE_PROJECT_INCLUDE="$ROOT/scripts/sanitize.cmake" \
      -Ccmake.define.TORCHCONV_SANITIZE_OPT=-O1 \
      -Ccmake.define.TORCHCONV_SANITIZE_UNUSED_ISAS="$UNUSED_ISAS" \
      -Ccmake.define.CMAKE_CXX_FLAGS="$SAN_FLAGS" \
      -Ccmake.define.CMAKE_CXX_FLAGS_DEBUG="$DEBUG_FLAGS" \
      -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="$SAN_LINK" \
      -Ccmake.define.CMAKE_SHARED_LINKER_FLAGS="$SAN_LINK" \
      "$SRC" > "$BUILD_DIR.log" 2>&1; then
    grep -E -A12 'error:|FAILED:' "$BUILD_DIR.log" | head -n 60
    die "the sanitizer build failed (full log: ${BUILD_DIR#$ROOT/}.log)"
  fi
  echo "$RUN_ISAS" > "$BUILD_DIR/sanitized-isas"
  say "built in $(( $(date +%s) - b0 )) s"
fi
BUILT_ISAS=$(cat "$BUILD_DIR/sanitized-isas")

# --- 2. the runs -------------------------------------------------------------------------------------------------
# detect_leaks=0: CPython and torch keep memory until exit by design. allocator_may_return_null=1: an allocation
# too large for ASan fails as plain malloc's would (torch raises), instead of being a report.
# detect_odr_violation=0: no ODR reports between torch's libraries and the module (none is instrumented but ours).
# log_path: ASan's reports go to files of their own (one per process, so a fuzz.py child's too). UBSan's ignore
# log_path when ASan is loaded: they go to stderr, so pytest runs with --capture=sys (fd 2 reaches the log).
PRELOAD="$LIBASAN $LIBUBSAN${LD_PRELOAD:+ $LD_PRELOAD}"
san_env() {  # $1: the reports' file prefix
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1:detect_odr_violation=0:log_path=$1${ASAN_EXTRA_OPTIONS:+:$ASAN_EXTRA_OPTIONS}"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=$UBSAN_HALT:report_error_type=1:exitcode=86"
  export ASAN_OPTIONS UBSAN_OPTIONS
}

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.san.* "$LOGS"/*.repros "$LOGS/results"
unset TORCHCONV_CPU_CAPABILITY

# The module comes from the venv, is linked against ASan, and the runtime is live in the process.
san_env "$LOGS/import.san"
check=$(env LD_PRELOAD="$PRELOAD" "$VENV/bin/python" -c 'import ctypes, sys, torch, torchconv
so = torchconv._C.__file__
assert so.startswith(sys.prefix + "/"), "torchconv._C is " + so + ", not the sanitizer build in " + sys.prefix
ctypes.CDLL(None).__asan_report_load1  # resolves only with the ASan runtime loaded
i = torchconv.build_info(); s = i["cpu_supports"]
print(so); print(" ".join(["default"] + ["avx2"] * s["avx2"] + ["avx512"] * (s["avx2"] and s["avx512f"])))
print("torch", torch.__version__, "| torchconv", i["version"], "| kernels", i["cpu_isa"], "|", i["num_threads"], "threads")' 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  printf '%s\n' "$check"; cat "$LOGS"/import.san.* 2>/dev/null
  die "importing the sanitizer build failed (rc $rc)"
fi
SO=$(printf '%s\n' "$check" | sed -n 1p)
MODULE_ISAS=$(printf '%s\n' "$check" | sed -n 2p)
say "$(printf '%s\n' "$check" | sed -n 3p)"
say "module: $SO"
ldd "$SO" | grep -q libasan || die "$SO is not linked against libasan"

FUZZ_HELP=""
[ -f tests/fuzz.py ] && FUZZ_HELP=$(env LD_PRELOAD="$PRELOAD" "$VENV/bin/python" tests/fuzz.py --help 2>&1)

echo
printf '%-8s %-12s %-10s %6s  %s\n' isa suite status time detail | tee "$LOGS/results"
failed=0
row() {  # isa suite status time detail
  printf '%-8s %-12s %-10s %6s  %s\n' "$@" | tee -a "$LOGS/results"
}
for isa in $ISAS; do
  case " $BUILT_ISAS " in
    *" $isa "*) ;;
    *) row "$isa" - skipped - "the CPU lacks it (this CPU: $CPU_ISAS)"; continue ;;
  esac
  case " $MODULE_ISAS " in
    *" $isa "*) ;;
    *) row "$isa" - skipped - "torchconv says the CPU lacks it"; continue ;;
  esac
  for suite in $SUITES; do
    case $suite in
      conformance|errors|autograd|kernels|cuda_emulation)
        # shellcheck disable=SC2086  # SANITIZE_PYTEST_ARGS is split like a command line's words
        eval "set -- -m pytest -v -p no:cacheprovider --capture=sys --durations=5 ${SANITIZE_PYTEST_ARGS:-} \"tests/test_$suite.py\"" ;;
      fuzz)
        if [ ! -f tests/fuzz.py ]; then row "$isa" fuzz skipped - "tests/fuzz.py does not exist"; continue; fi
        set -- tests/fuzz.py --seeds "$FUZZ_SEEDS"
        # fuzz.py runs each ISA in a child of its own; one ISA a run here, and a longer silence before a
        # sanitized child counts as hung.
        case $FUZZ_HELP in *--isa*) set -- "$@" --isa "$isa" ;; esac
        case $FUZZ_HELP in *--timeout*) set -- "$@" --timeout 120 ;; esac ;;
      *) die "unknown suite $suite (conformance, errors, autograd, kernels, cuda_emulation, fuzz)" ;;
    esac
    tag=$isa-$suite
    san_env "$LOGS/$tag.san"
    t0=$(date +%s)
    timeout "$RUN_TIMEOUT" env TORCHCONV_CPU_CAPABILITY="$isa" LD_PRELOAD="$PRELOAD" \
      "$VENV/bin/python" "$@" > "$LOGS/$tag.log" 2>&1
    rc=$?
    dt=$(( $(date +%s) - t0 ))
    if [ "$suite" = fuzz ]; then
      detail=$(grep -m1 ' runs in ' "$LOGS/$tag.log")
      d=$(grep -m1 'distinct defects' "$LOGS/$tag.log") && detail="$detail; $d"
      # A crash's report is in fuzz.py's hands (UBSan's, on the child's stderr): run each crash again, here.
      grep -A1 '^DEFECT .*\] crash ' "$LOGS/$tag.log" | grep '^  TORCHCONV_CPU_CAPABILITY=.* --case ' |
        head -n "$FUZZ_REPROS" > "$LOGS/$tag.repros"
      i=0
      while IFS= read -r line; do
        i=$((i + 1))
        san_env "$LOGS/$tag-repro$i.san"
        { echo "$line"; PATH="$VENV/bin:$PATH" timeout 600 sh -c "export LD_PRELOAD=\"\$0\"; $line" "$PRELOAD"; } \
          > "$LOGS/$tag-repro$i.log" 2>&1
      done < "$LOGS/$tag.repros"
      [ $i -gt 0 ] && detail="$detail; $i crash(es) run again"
    else
      # pytest's closing line
      detail=$(grep -E '^=+ .*(passed|failed|error|skipped|no tests ran).* =+$' "$LOGS/$tag.log" | tail -n 1 |
        sed 's/^=* //; s/ =*$//')
    fi
    [ -n "$detail" ] || detail=$(grep -v '^ *$' "$LOGS/$tag.log" | tail -n 1 | cut -c1-120)
    reports=$(( $(ls "$LOGS/$tag".san.* "$LOGS/$tag"-repro*.san.* 2>/dev/null | wc -l) +
                $(cat "$LOGS/$tag.log" "$LOGS/$tag"-repro*.log 2>/dev/null | grep -c ': runtime error: ') ))
    if [ "$reports" -gt 0 ] || [ $rc -eq 86 ]; then
      status=SANITIZER; failed=1
      if [ $rc -eq 86 ] && [ "$suite" != fuzz ]; then  # the report ended pytest: in which test
        detail="ended by a report, in $(grep -E '^tests/.*::' "$LOGS/$tag.log" | tail -n 1 | sed 's/ .*//' | cut -c1-120)"
      else
        detail="$reports report(s); $detail"
      fi
    elif [ $rc -eq 124 ]; then status=TIMEOUT; failed=1; detail="over ${RUN_TIMEOUT}s; $detail"
    elif [ $rc -ne 0 ]; then status=FAILED; failed=1
    else status=ok
    fi
    row "$isa" "$suite" "$status" "${dt}s" "$detail"
  done
done

# --- 3. the reports ----------------------------------------------------------------------------------------------
echo
say "sanitizer reports (logs in ${LOGS#$ROOT/}/)"
set -- "$LOGS"/*.log
for f in "$LOGS"/*.san.*; do [ -e "$f" ] && set -- "$@" "$f"; done
"$PY" "$ROOT/scripts/sanitize_reports.py" --frames "$FRAMES" "$@"
[ $? -eq 1 ] && failed=1

echo
say "runs"
cat "$LOGS/results"
total=$(( $(date +%s) - start ))
echo
if [ $failed -ne 0 ]; then
  say "FAILED: see the reports and runs above ($total s)"
  exit 1
fi
say "OK: no sanitizer report, every run passed ($total s)"
exit 0
