// K-means kernels compiled for the avx512 instruction set.
#define COHORTREC_ISA_NS isa_avx512
#define COHORTREC_VBYTES 64
#define COHORTREC_MR 12
#define COHORTREC_NV 2
#include "cpu/kmeans_isa.inc"
