#ifndef BFQ_CODE_TABLES_H
#define BFQ_CODE_TABLES_H
/* Internal to CBFQShims: the field → codes tables shared by Codes.c and Dequantize.c. */
#include "CBFQShims.h"
#include <string.h>

/* A row is read as fields of `field_bits` bits (LSB first), each holding `field_codes` codes. Radix layouts read
 * their groups as fields; plain layouts of 1, 2, 4 or 8 bits read whole bytes (8 / w codes each), other plain widths
 * one code per field. A field decodes through `lo` alone (indexed by the field value) or, when `lo_count` is nonzero,
 * as lo[v % lo_count] followed by hi[v / lo_count]. Entries hold up to 8 codes, one per byte; stores write all 8.
 * L = 257 (G = 1, W = 9) has no tables: its codes do not fit a byte, and each field is a code (bfq_wide_code). */
struct bfq_code_tables {
    uint32_t levels;
    uint32_t field_bits;
    uint32_t field_codes;
    uint32_t field_limit; /* fields >= this are invalid: L^G, or 2^field_bits when every value is valid */
    uint32_t lo_codes;    /* codes in a lo entry when split */
    uint32_t lo_count;    /* 0: lo is indexed by the whole field */
    uint64_t lo_magic;    /* ceil(2^32 / lo_count): v / lo_count == (v * lo_magic) >> 32 for v < 2^16 */
    uint32_t plain_bits;  /* w for plain layouts, 0 for radix */
    uint8_t (*lo)[8];
    uint8_t (*hi)[8];
};

/* Extra bytes past the last code that field decoding may write. */
#define BFQ_CODE_SLACK 16
/* Most codes decoded per step, so a step's codes and values stay in L1. */
#define BFQ_CHUNK_CODES 2048

/* Codes per step: a multiple of 8 and of field_codes. */
static inline size_t bfq_chunk_codes(const struct bfq_code_tables *t) {
    return 8 * t->field_codes * (BFQ_CHUNK_CODES / 8 / t->field_codes);
}

static inline uint32_t bfq_load_le32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap32(x);
#endif
    return x;
}

/* The field that starts at stream bit `bit` of a row of `row_bytes` bytes. */
static inline uint32_t bfq_field_at(const uint8_t *row, size_t row_bytes, size_t bit, uint32_t field_bits) {
    size_t byte = bit >> 3;
    uint32_t x = 0;
    if (byte + 4 <= row_bytes) {
        x = bfq_load_le32(row + byte);
    } else {
        for (size_t k = 0; byte + k < row_bytes; k++) x |= (uint32_t)row[byte + k] << (8 * k);
    }
    return (x >> (bit & 7)) & ((1u << field_bits) - 1);
}

/* Code `index` of an L = 257 row, 0 when invalid (then `*bad` is set). */
static inline uint32_t bfq_wide_code(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t index,
                                     uint32_t *bad) {
    uint32_t v = bfq_field_at(row, row_bytes, index * t->field_bits, t->field_bits);
    *bad |= v >= t->levels;
    return v < t->levels ? v : 0;
}

/* Decodes the fields holding codes [first, first + count) of a row (first a multiple of field_codes) into `codes`,
 * which receives ceil(count / field_codes) * field_codes codes plus scratch up to BFQ_CODE_SLACK bytes past them.
 * Returns nonzero when a field value is invalid (its codes are then zeros or digits of garbage, never out of range).
 * Only for L <= 256. */
int bfq_decode_fields(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t first, size_t count,
                      uint8_t *codes);

/* Whether the row's padding (codes past `columns` in its last field, bits past its last field) is all zero. */
int bfq_padding_is_zero(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t columns);

#endif
