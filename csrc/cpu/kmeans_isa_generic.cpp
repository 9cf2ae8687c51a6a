// K-means kernels compiled for the generic instruction set.
#define COHORTREC_ISA_NS isa_generic
#define COHORTREC_VBYTES 16
#define COHORTREC_MR 4
#define COHORTREC_NV 2
#include "cpu/kmeans_isa.inc"
