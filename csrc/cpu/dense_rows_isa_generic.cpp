// dense_rows_combine compiled for the generic instruction set.
#define COHORTREC_ISA_NS isa_generic
#define COHORTREC_VBYTES 16
#include "cpu/dense_rows_isa.inc"
