#ifndef BFQ_SHIMS_H
#define BFQ_SHIMS_H
/// Element conversion and checksum kernels that need CPU intrinsics.
/// Every conversion rounds to nearest even, as PyTorch does on the CPU.
#include <stddef.h>
#include <stdint.h>

void bfq_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void bfq_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void bfq_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
void bfq_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void bfq_f64_to_f32(const double *src, float *dst, size_t n);
/// Decodes float8 (e4m3fn when `e5m2` is 0, e5m2 otherwise) to f32.
void bfq_f8_to_f32(const uint8_t *src, float *dst, size_t n, int e5m2);

/// Lets glibc serve blocks up to 1 GiB from the heap and keep freed ones for reuse (instead of a fresh mapping, page
/// faults and zeroing for every large buffer); no effect on other C libraries.
void bfq_reuse_freed_blocks(void);

/// Opens an unnamed regular file in `directory` for reading and writing (Linux O_TMPFILE): it has no name until
/// linked, and vanishes with the process otherwise. Returns the descriptor, or -1 with errno (EOPNOTSUPP where the
/// system or file system has no unnamed files).
int bfq_open_unnamed(const char *directory);

/// Swaps two paths in one step (renameat2 with RENAME_EXCHANGE). Returns 0, or -1 with errno (EINVAL or ENOSYS where
/// the file system or kernel cannot).
int bfq_exchange_paths(const char *first, const char *second);

/// Removes the files directly in `path`, then the folder; async-signal-safe (no allocation), for interrupt handlers.
/// Returns rmdir's result.
int bfq_remove_flat_directory(const char *path);

/// CRC-32 (ISO-HDLC, the zip polynomial) of `n` bytes, continuing from `crc` (0 to start).
uint32_t bfq_crc32(uint32_t crc, const void *data, size_t n);

/// Tables that turn packed groups back into codes for one level count (the packing layout of spec/bfq.md).
typedef struct bfq_code_tables bfq_code_tables;

/// Tables for `levels` levels stored `group_codes` per `group_bits`-bit group (radix or byte packing; plain packing
/// is the case L^G = 2^W, L = 2^w). NULL when memory runs out.
bfq_code_tables *bfq_code_tables_create(uint32_t levels, uint32_t group_codes, uint32_t group_bits);
void bfq_code_tables_free(bfq_code_tables *tables);

/// Unpacks rows [first_row, first_row + row_count) of `packed` (rows of `row_bytes`) into `codes` (rows of `columns`).
/// Returns -1, or the first row with a group value >= L^G or nonzero padding (see bfq_check_row).
ptrdiff_t bfq_unpack_rows(const bfq_code_tables *tables, const uint8_t *packed, size_t row_bytes, size_t columns,
                          size_t first_row, size_t row_count, uint16_t *codes);

/// What is wrong with one packed row: 0 nothing, 1 group `*group` holds `*value` >= L^G, 2 nonzero padding.
int bfq_check_row(const bfq_code_tables *tables, const uint8_t *row, size_t row_bytes, size_t columns, size_t *group,
                  uint32_t *value);

/// One tensor's packed codes and how codes become values: w = s * (c - L/2) + o on a grid, table[c] for a palette.
typedef struct bfq_dequant_job {
    const bfq_code_tables *tables;
    size_t columns;          /// codes per row
    size_t row_bytes;        /// packed bytes per row
    const float *scales;     /// grid: ceil(columns / group_size) scales per row; NULL for a palette
    size_t group_size;       /// grid: codes per scale (columns for one scale per row)
    const float *offsets;    /// grid: one offset per row, or NULL for none (o = 0)
    const float *palette;    /// palette: `levels` values per table; NULL for a grid
    size_t palette_stride;   /// palette: 0 for one table for every row, `levels` for one table per row
    int f16;                 /// 1: write f16 bits (rounded to nearest even), 0: write f32
    int vectorized;          /// 0 forces the portable scalar kernels (same bits)
} bfq_dequant_job;

/// Decodes rows [first_row, first_row + row_count) of `packed` into `out` (rows of `columns` f32 or f16 values) by
/// table lookups. Returns -1, or the first row with a group value >= L^G or nonzero padding (see bfq_check_row).
ptrdiff_t bfq_dequantize_rows(const bfq_dequant_job *job, const uint8_t *packed, void *out, size_t first_row,
                              size_t row_count);

#include "BFQMeasure.h"
#include "BFQQuantize.h"
#include "BFQUNet.h"
#include "BFQAllocate.h"
#include "BFQCompensate.h"
#include "BFQBLAS.h"
#include "BFQGGUF.h"
#endif
