// K-means kernels compiled for the avx2 instruction set.
#define COHORTREC_ISA_NS isa_avx2
#define COHORTREC_VBYTES 32
#define COHORTREC_MR 6
#define COHORTREC_NV 2
#include "cpu/kmeans_isa.inc"
