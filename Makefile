# u2net.c - build, test, install.
#   make            library (build/libu2net.a, build/libu2net.so) and program (build/u2net)
#   make test       every test; ends with "N passed, M failed, K skipped"
#   make BUILTIN_MODEL=0  the same without the built-in model (weights/u2netp.u2nc)
#   make weights    makes weights/u2netp.u2nc again from ../shared/weights/u2netp-fp16.onnx
#   make PYTHON=... the interpreter with numpy (and torch for the reference tests)
#   make CUDA=1     the same with the CUDA backend, into build/cuda (nvcc from
#                   CUDA_HOME, /usr/local/cuda; CUDA_ARCH: sm_90 code and PTX)
#   make CROSS=aarch64-linux-gnu-  the same for ARM64 by that cross compiler,
#                   into build/aarch64; make test-arm64 tests it under qemu
#   make static     build/static/u2net, one statically linked program
# `make` with no target builds all, whatever rule comes first below
.DEFAULT_GOAL := all

PYTHON   ?= /usr/bin/python3
CC       ?= cc
# CROSS: a cross compiler's prefix; its build goes to build/ARCH, without
# the libraries the host's pkg-config would find (u2net serve's HTTP side)
CROSS    ?=
ifneq ($(CROSS),)
CC       := $(CROSS)gcc
AR       := $(CROSS)ar
HTTP     ?= 0
endif
BUILD    ?= $(if $(CUDA),build/cuda,$(if $(CROSS),build/$(firstword $(subst -, ,$(CROSS))),build))
SHARED   ?= ../shared
OPT      ?= -O3
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror
ENGINE_DIRS := engine engine/model engine/graph engine/cpu engine/image
CPPFLAGS += $(addprefix -I,$(ENGINE_DIRS)) -Ikernels -D_DEFAULT_SOURCE
ALL_CFLAGS := -std=c11 $(WARN) -fPIC -fopenmp $(CFLAGS)
LDLIBS   += -lm
LDFLAGS  += -fopenmp

VERSION  := $(shell sed -n 's/^\#define U2NET_VERSION_STRING "\(.*\)"/\1/p' engine/u2net.h)

ENGINE_SRC  := $(wildcard $(addsuffix /*.c,$(ENGINE_DIRS)))
KERNEL_SRC  := $(wildcard kernels/*.c)
PROGRAM_SRC := $(wildcard src/*.c)
# u2net serve's HTTP side needs libmicrohttpd (Debian: libmicrohttpd-dev),
# found by pkg-config; without it everything else builds and `u2net serve`
# says how to get it. HTTP=0 leaves it out where it is installed. The
# setting is kept in a file whose change rebuilds cmd_serve.o.
HTTP ?= $(shell pkg-config --exists libmicrohttpd 2>/dev/null && echo 1 || echo 0)
HTTP_SETTING := $(BUILD)/http.setting
$(shell mkdir -p $(BUILD) && echo $(HTTP) | cmp -s - $(HTTP_SETTING) || echo $(HTTP) > $(HTTP_SETTING))
$(BUILD)/src/cmd_serve.o: $(HTTP_SETTING)
ifeq ($(HTTP),1)
$(BUILD)/src/cmd_serve.o: CPPFLAGS += -DU2NET_WITH_HTTP
$(BUILD)/src/serve_http.o: CPPFLAGS += $(shell pkg-config --cflags libmicrohttpd)
PROGRAM_LDLIBS := $(shell pkg-config --libs libmicrohttpd) -pthread
else
PROGRAM_SRC := $(filter-out src/serve_http.c,$(PROGRAM_SRC))
PROGRAM_LDLIBS := -pthread
endif
# the web page of u2net serve, built into the program (src/serve_page.c)
$(BUILD)/src/serve_page.o: src/serve_page.html
LIB_OBJ     := $(patsubst %.c,$(BUILD)/%.o,$(ENGINE_SRC) $(KERNEL_SRC))

# The CUDA backend (cuda/): its plan in C and its kernels and glue for nvcc,
# with the host compiler's warnings as errors too. Plain `make` needs none
# of it.
CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
ifneq ($(CUDA),)
CPPFLAGS += -DU2NET_CUDA -Icuda
LIB_OBJ  += $(BUILD)/cuda/gpu_plan.o $(BUILD)/cuda/cuda_backend.o
LDLIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
NVCC_FLAGS := -O3 -std=c++17 $(CUDA_ARCH) -Werror all-warnings -isystem $(CUDA_HOME)/include \
  -Xcompiler -fPIC,-fopenmp,-Wall,-Wextra,-Werror
$(BUILD)/cuda/%.o: cuda/%.cu $(wildcard engine/*.h engine/*/*.h cuda/*.h kernels/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVCC_FLAGS) -c $< -o $@
endif
PROGRAM_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(PROGRAM_SRC))
TEST_BINS   := $(BUILD)/test_kernels $(BUILD)/test_threads $(BUILD)/test_backends \
               $(BUILD)/test_gpu_bodies

PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all test weights clean install python demo readme-images sanitize tsan fuzz
all: $(BUILD)/libu2net.a $(BUILD)/libu2net.so $(BUILD)/u2net

ENGINE_HEADERS := $(wildcard $(addsuffix /*.h,$(ENGINE_DIRS)) engine/image/stb/*.h)
$(BUILD)/%.o: %.c $(ENGINE_HEADERS) $(wildcard kernels/*.h src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

# Per-ISA kernel files: kernels/*_avx2.c and kernels/*_avx512.c are built
# for those instruction sets alone; the library checks the CPU
# (kernels/isa.c) before calling them. Elsewhere than x86 they compile empty.
X86 := $(if $(filter x86_64% i386% i486% i586% i686%,$(shell $(CC) -dumpmachine)),1)
AVX2_FLAGS   := $(if $(X86),-mavx2 -mfma -mf16c)
AVX512_FLAGS := $(if $(X86),-mavx512f -mavx512vl -mavx512dq -mavx512bw -mavx2 -mfma -mf16c)
ISA_SRC := $(filter %_avx2.c %_avx512.c,$(KERNEL_SRC))
$(BUILD)/kernels/%_avx2.o: ALL_CFLAGS += $(AVX2_FLAGS)
$(BUILD)/kernels/%_avx512.o: ALL_CFLAGS += $(AVX512_FLAGS)

$(BUILD)/libu2net.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/libu2net.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/u2net: $(PROGRAM_OBJ) $(BUILD)/libu2net.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(PROGRAM_LDLIBS)

$(BUILD)/test_kernels: tests/test_kernels.c $(BUILD)/libu2net.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# test_backends also runs the CUDA backend's plan on the CPU (cuda/gpu_plan.c,
# cuda/gpu_emulate.c), which it builds itself: no CUDA needed.
GPU_PLAN_SRC := cuda/gpu_plan.c cuda/gpu_emulate.c
$(BUILD)/test_backends: tests/test_backends.c $(GPU_PLAN_SRC) $(BUILD)/libu2net.a $(wildcard cuda/*.h)
	$(CC) $(CPPFLAGS) -Icuda $(ALL_CFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

$(BUILD)/test_gpu_bodies: tests/test_gpu_bodies.c $(BUILD)/libu2net.a $(wildcard cuda/*.h)
	$(CC) $(CPPFLAGS) -Icuda $(ALL_CFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

# The model file the library holds for an ONNX file or the built-in model,
# for test_onnx and test_builtin_model to compare with the converter's.
TEST_BINS += $(BUILD)/test_model_image
$(BUILD)/test_model_image: tests/test_model_image.c $(BUILD)/libu2net.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test_threads: tests/test_threads.c $(BUILD)/libu2net.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -pthread -o $@ $^ $(LDLIBS)

TEST_BINS += $(BUILD)/test_cancel
$(BUILD)/test_cancel: tests/test_cancel.c $(BUILD)/libu2net.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -pthread -o $@ $^ $(LDLIBS)

# Speed and accuracy of the 3x3 convolution kernels on U2Net layer shapes.
$(BUILD)/bench_conv: bench/bench_conv.c $(BUILD)/libu2net.a
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

# The built-in model: weights/u2netp.u2nc (committed) linked into the library
# by engine/model/builtin_model.c; BUILTIN_MODEL=0 leaves it out. The setting
# is kept in a file whose change rebuilds the object.
BUILTIN_MODEL ?= 1
BUILTIN_SETTING := $(BUILD)/builtin_model.setting
$(shell mkdir -p $(BUILD) && echo $(BUILTIN_MODEL) | cmp -s - $(BUILTIN_SETTING) || \
  echo $(BUILTIN_MODEL) > $(BUILTIN_SETTING))
$(BUILD)/engine/model/builtin_model.o: CPPFLAGS += -DU2NET_WITH_BUILTIN_MODEL=$(BUILTIN_MODEL)
$(BUILD)/engine/model/builtin_model.o: $(BUILTIN_SETTING) \
  $(if $(filter 1,$(BUILTIN_MODEL)),weights/u2netp.u2nc)

# stb_image_write's JPEG encoder left-shifts negative values (defined by GCC,
# flagged by UBSan); the rest of stb stays checked.
$(BUILD)/engine/image/stb_impl.o: ALL_CFLAGS += -fno-sanitize=shift

# make sanitize: the library, program and tests built with AddressSanitizer +
# UndefinedBehaviorSanitizer into build/san, and the whole suite run on them.
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
sanitize:
	U2NET_SANITIZE=1 $(MAKE) --no-print-directory BUILD=$(BUILD)/san \
	  CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="-fopenmp $(SAN_FLAGS)" test

# make tsan: the library, tests/test_threads.c and tests/test_cancel.c built
# with ThreadSanitizer into build/tsan; the test of 8 threads sharing one
# model and the cancellation test (a request from another thread) run on them.
# Each context runs one OpenMP thread (the tests ask for 1, and
# OMP_NUM_THREADS=1 covers the rest): the OpenMP runtime is not
# instrumented, so TSan would not see their own synchronisation between the
# threads of a team and would report races that are not there.
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
tsan:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan CFLAGS="-O1 -g $(TSAN_FLAGS)" \
	  LDFLAGS="-fopenmp $(TSAN_FLAGS)" $(BUILD)/tsan/test_threads $(BUILD)/tsan/test_cancel
	U2NET_BUILD=$(abspath $(BUILD)/tsan) OMP_NUM_THREADS=1 \
	  $(PYTHON) tests/run.py test_threads
	OMP_NUM_THREADS=1 GOMP_SPINCOUNT=2000 $(BUILD)/tsan/test_cancel weights/u2netp.u2nc 256 2 1

# make fuzz FUZZ_SECONDS=N: each libFuzzer target (tests/fuzz/README.md)
# built with clang and its sanitizers, run N seconds on a copy of its seeds;
# stops at the first crash, sanitizer report, leak or timeout, leaving the
# input in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := model onnx image image_msan cli
FUZZ_SRC := $(ENGINE_SRC) $(filter-out $(ISA_SRC),$(KERNEL_SRC))
FUZZ_ISA_OBJ := $(patsubst kernels/%.c,$(BUILD)/fuzz/%.o,$(ISA_SRC))
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -std=c11 -D_DEFAULT_SOURCE $(addprefix -I,$(ENGINE_DIRS)) -Ikernels -Isrc -fopenmp \
  -Wno-unused-command-line-argument
FUZZ_HEADERS := $(ENGINE_HEADERS) $(wildcard kernels/*.h src/*.h)
# the command-line target links the program's option parser too
$(BUILD)/fuzz/fuzz_cli: src/options.c src/util.c
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRC) $(FUZZ_ISA_OBJ) $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -o $@ $< $(FUZZ_SRC) $(filter src/%.c,$^) $(FUZZ_ISA_OBJ) $(LDLIBS)
FUZZ_ISA_FLAGS := -g -O1 -fsanitize=address,undefined -std=c11 $(addprefix -I,$(ENGINE_DIRS)) -Ikernels
$(BUILD)/fuzz/%_avx2.o: kernels/%_avx2.c $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_ISA_FLAGS) $(AVX2_FLAGS) -c $< -o $@
$(BUILD)/fuzz/%_avx512.o: kernels/%_avx512.c $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_ISA_FLAGS) $(AVX512_FLAGS) -c $< -o $@
# Image decoding again under MemorySanitizer, which sees reads of
# uninitialised memory (ASan does not). Only the decoding sources: MSan needs
# all the code it runs instrumented, and libgomp is not.
MSAN_IMAGE_SRC := engine/image/image.c engine/image/stb_impl.c engine/error.c engine/image/fileio.c
$(BUILD)/fuzz/fuzz_image_msan: tests/fuzz/fuzz_image.c $(MSAN_IMAGE_SRC) $(FUZZ_HEADERS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,memory -fsanitize-memory-track-origins -std=c11 \
	  -D_DEFAULT_SOURCE $(addprefix -I,$(ENGINE_DIRS)) -o $@ $< $(MSAN_IMAGE_SRC)
fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(BUILD)/fuzz/corpus-$$t && cp -r tests/fuzz/seeds/$${t%_msan} $(BUILD)/fuzz/corpus-$$t && \
	  (cd $(BUILD)/fuzz && ./fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	     -timeout=10 -max_len=65536 -print_final_stats=1 corpus-$$t) || exit 1; \
	done

# The built-in model made again from the shared weights, as it was made to
# be committed (test_builtin_model checks that this gives the same bytes).
weights:
	$(PYTHON) tools/convert.py $(SHARED)/weights/u2netp-fp16.onnx -o weights/u2netp.u2nc --fp16 --force

test: all $(TEST_BINS)
	U2NET_BUILD=$(abspath $(BUILD)) U2NET_LDFLAGS="$(LDFLAGS)" $(PYTHON) tests/run.py $(TESTS)

# make static: $(BUILD)/static/u2net, the program linked statically (glibc,
# libgomp, libm; stripped) with the built-in model, so that it runs on a
# machine with nothing installed; without u2net serve's HTTP side, whose
# library (libmicrohttpd, with GnuTLS) has no static build in Debian.
# make test-static tests it (tests/test_static.py); with CROSS it is the
# ARM64 one, build/aarch64/static/u2net.
static:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/static HTTP=0 \
	  LDFLAGS="-fopenmp -static -s" $(BUILD)/static/u2net
test-static: static all
	U2NET_BUILD=$(abspath $(BUILD)) U2NET_STATIC=$(abspath $(BUILD)/static/u2net) \
	  $(PYTHON) tests/run.py test_static

# make test-arm64: the library, program and C tests built for ARM64
# (CROSS=aarch64-linux-gnu-, Debian's gcc-aarch64-linux-gnu) and its static
# program, run under qemu-aarch64 (Debian's qemu-user) with the cross
# compiler's libraries (ARM64_SYSROOT): test_kernels, test_backends and the
# goldens, NEON against the reference and against this machine's AVX2
# (tests/test_arm64.py).
ARM64_CROSS   ?= aarch64-linux-gnu-
ARM64_BUILD   ?= build/aarch64
ARM64_SYSROOT ?= /usr/aarch64-linux-gnu
test-arm64: all
	$(MAKE) --no-print-directory CROSS=$(ARM64_CROSS) BUILD=$(ARM64_BUILD) all \
	  $(ARM64_BUILD)/test_kernels $(ARM64_BUILD)/test_backends static
	U2NET_BUILD=$(abspath $(BUILD)) U2NET_ARM64_BUILD=$(abspath $(ARM64_BUILD)) \
	  U2NET_ARM64_SYSROOT=$(ARM64_SYSROOT) $(PYTHON) tests/run.py test_arm64
.PHONY: static test-static test-arm64

# Background removal on the sample photo with the default model.
demo: all
	$(BUILD)/u2net docs/img/sample.jpg -o $(BUILD)/demo/ -t mask,rgba,composite \
	  --background '#3366aa' --overwrite -v
	@echo "outputs in $(BUILD)/demo/"

# The README's pictures, made by the program from the generated sample.
readme-images: all
	$(BUILD)/u2net docs/img/sample.jpg -o docs/img/ -t mask,rgba,composite \
	  --background '#3366aa' --overwrite -q
	$(PYTHON) tools/make_sample.py --hair -o docs/img/hair.jpg
	@mkdir -p $(BUILD)/edges
	for m in default guided alpha-matting; do \
	  $(BUILD)/u2net docs/img/hair.jpg -o $(BUILD)/edges/$$m.png -t composite \
	    --background '#3366aa' --overwrite -q $$([ $$m = default ] || echo --$$m) || exit 1; \
	  $(PYTHON) -c "import sys; from PIL import Image; Image.open(sys.argv[1]).crop((290, 70, 370, 130))\
	    .resize((320, 240), Image.NEAREST).save(sys.argv[2])" \
	    $(BUILD)/edges/$$m.png docs/img/edges_$${m#alpha-}.png || exit 1; \
	done

# make install PREFIX=/opt/u2net: library, header, program, pkg-config file,
# and the default model when it has been converted.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/u2net
	install -m 755 $(BUILD)/u2net $(DESTDIR)$(PREFIX)/bin/u2net
	install -m 644 $(BUILD)/libu2net.a $(DESTDIR)$(PREFIX)/lib/libu2net.a
	install -m 755 $(BUILD)/libu2net.so $(DESTDIR)$(PREFIX)/lib/libu2net.so
	install -m 644 engine/u2net.h $(DESTDIR)$(PREFIX)/include/u2net.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' u2net.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/u2net.pc
	if [ -f weights/u2netp.u2nc ]; then install -m 644 weights/*.u2nc $(DESTDIR)$(PREFIX)/share/u2net/; fi

# make python: build/libu2net.so copied into the Python package, so that
# `pip install ./python` installs a package that carries its library
# (README.md, Python).
python: $(BUILD)/libu2net.so
	cp $(BUILD)/libu2net.so python/u2net/libu2net.so

clean:
	rm -rf $(BUILD)

# make gpu-check OUT=DIR: the CUDA backend proved and measured on this
# machine's GPU (tests/gpu/README.md); the table and logs go to DIR.
OUT ?= build/gpu-check-out
gpu-check:
	tests/gpu/run.sh $(OUT)
.PHONY: gpu-check

# make bench: the engine against ONNX Runtime and PyTorch on the same weights
# (bench/README.md; ONNX Runtime is installed from PyPI into
# $(BUILD)/bench-venv on the first run); BENCH_ARGS="--models u2netp,isnet
# --sizes 320 --rounds 1" runs a quick one. fma_peak measures the machine's
# FMA ceiling, so it is built for this very CPU. Then the program against
# rembg's command line (bench/rembg_bench.py; rembg from PyPI into
# $(BUILD)/rembg-venv on the first run), a couple of minutes.
BENCH_ARGS ?=
$(BUILD)/fma_peak: bench/fma_peak.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(WARN) -O2 -march=native -fopenmp -o $@ $<

bench: $(BUILD)/u2net $(BUILD)/libu2net.so $(BUILD)/fma_peak
	$(PYTHON) bench/run_bench.py --build $(BUILD) --isnet-weights $(SHARED)/weights/isnet-fp16.onnx \
	  $(BENCH_ARGS)
	$(PYTHON) bench/matting_bench.py --build $(BUILD) --shared $(SHARED)
	$(PYTHON) bench/rembg_bench.py --build $(BUILD) --shared $(SHARED)
	$(PYTHON) bench/serve_bench.py --build $(BUILD) --shared $(SHARED) $(SERVE_BENCH_ARGS)
	$(PYTHON) bench/stream_bench.py --build $(BUILD) --shared $(SHARED)
	$(PYTHON) bench/python_bench.py --build $(BUILD) --shared $(SHARED)
.PHONY: bench

# make bench-serve: u2net serve under load, and rembg's server on the same
# weights (bench/README.md; rembg from PyPI into $(BUILD)/serve-bench-venv);
# SERVE_BENCH_ARGS="--duration 10 --rounds 1 --long 500" runs a quick one.
SERVE_BENCH_ARGS ?=
bench-serve: $(BUILD)/u2net
	$(PYTHON) bench/serve_bench.py --build $(BUILD) --shared $(SHARED) $(SERVE_BENCH_ARGS)
.PHONY: bench-serve
