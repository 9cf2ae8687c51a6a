// dense_rows_combine compiled for the avx2 instruction set.
#define COHORTREC_ISA_NS isa_avx2
#define COHORTREC_VBYTES 32
#include "cpu/dense_rows_isa.inc"
