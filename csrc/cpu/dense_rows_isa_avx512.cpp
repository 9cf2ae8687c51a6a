// dense_rows_combine compiled for the avx512 instruction set.
#define COHORTREC_ISA_NS isa_avx512
#define COHORTREC_VBYTES 64
#include "cpu/dense_rows_isa.inc"
