#include "CodeTables.h"
#include <stdlib.h>

/* The base-`levels` digits of `v`, lowest first, one per byte of `entry` (bytes past `digits` stay zero). */
static void put_digits(uint8_t entry[8], uint32_t v, uint32_t levels, uint32_t digits) {
    for (uint32_t k = 0; k < digits; k++) {
        entry[k] = (uint8_t)(v % levels);
        v /= levels;
    }
}

static uint32_t power(uint32_t base, uint32_t exponent) {
    uint32_t p = 1;
    while (exponent--) p *= base;
    return p;
}

bfq_code_tables *bfq_code_tables_create(uint32_t levels, uint32_t group_codes, uint32_t group_bits) {
    struct bfq_code_tables *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->levels = levels;
    if ((levels & (levels - 1)) == 0 && power(levels, group_codes) == 1u << group_bits) {
        /* every field value valid: plain packing of w = log2(L) bits per code (byte packing of L = 2, 4, 16 and 256
         * is the same bit stream), read as whole bytes when w divides 8 */
        const uint32_t w = (uint32_t)__builtin_ctz(levels);
        t->plain_bits = w;
        t->field_bits = 8 % w == 0 ? 8 : w;
        t->field_codes = t->field_bits / w;
        t->field_limit = 1u << t->field_bits;
    } else {
        t->field_bits = group_bits;
        t->field_codes = group_codes;
        t->field_limit = power(levels, group_codes);
    }
    uint32_t codes = t->field_codes;
    if (levels > 256) return t;
    if (t->field_bits <= 12) {
        t->lo = calloc((size_t)1 << t->field_bits, 8);
        if (!t->lo) { free(t); return NULL; }
        for (uint32_t v = 0; v < t->field_limit; v++) put_digits(t->lo[v], v, levels, codes);
        return t;
    }
    t->lo_codes = (codes + 1) / 2;
    t->lo_count = power(levels, t->lo_codes);
    t->lo_magic = ((1ull << 32) + t->lo_count - 1) / t->lo_count;
    uint32_t hi_valid = power(levels, codes - t->lo_codes);
    uint32_t hi_count = ((1u << t->field_bits) - 1) / t->lo_count + 1; /* every field value indexes inside hi */
    t->lo = calloc(t->lo_count, 8);
    t->hi = calloc(hi_count, 8);
    if (!t->lo || !t->hi) { bfq_code_tables_free(t); return NULL; }
    for (uint32_t v = 0; v < t->lo_count; v++) put_digits(t->lo[v], v, levels, t->lo_codes);
    for (uint32_t v = 0; v < hi_valid; v++) put_digits(t->hi[v], v, levels, codes - t->lo_codes);
    return t;
}

void bfq_code_tables_free(bfq_code_tables *t) {
    if (!t) return;
    free(t->lo);
    free(t->hi);
    free(t);
}

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/* Writes the codes of field value `v`: lo[v], or lo[v % lo_count] then hi[v / lo_count] when `split`. */
__attribute__((always_inline))
static inline void put_field(const struct bfq_code_tables *t, uint32_t v, uint8_t *codes, int split, uint32_t *bad) {
    *bad |= v >= t->field_limit;
    if (!split) {
        memcpy(codes, t->lo[v], 8);
        return;
    }
    uint32_t hi = (uint32_t)(((uint64_t)v * t->lo_magic) >> 32);
    memcpy(codes, t->lo[v - hi * t->lo_count], 8);
    memcpy(codes + t->lo_codes, t->hi[hi], 8);
}

/* bfq_decode_fields for a constant field width `w`: 8 fields at a time from w bytes through two 64-bit loads,
 * single fields where a block would start unaligned or read past the row. Tables split exactly when w > 12. */
__attribute__((always_inline))
static inline uint32_t decode_width(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t f0,
                                    size_t nf, uint8_t *codes, const uint32_t w) {
    const int split = w > 12;
    const uint32_t g = t->field_codes;
    uint32_t bad = 0;
    size_t j = 0;
    for (; j < nf && ((f0 + j) & 7); j++, codes += g)
        put_field(t, bfq_field_at(row, row_bytes, (f0 + j) * w, w), codes, split, &bad);
    for (; j + 8 <= nf && (f0 + j) / 8 * w + 16 <= row_bytes; j += 8, codes += 8 * g) {
        const uint8_t *src = row + (f0 + j) / 8 * w;
        const uint64_t a = load_le64(src), b = load_le64(src + 8);
#pragma clang loop unroll(full)
        for (uint32_t k = 0; k < 8; k++) {
            const uint32_t bit = k * w;
            const uint64_t x = bit >= 64 ? b >> (bit - 64) : bit + w <= 64 ? a >> bit : (a >> bit) | (b << (64 - bit));
            put_field(t, (uint32_t)x & ((1u << w) - 1), codes + k * g, split, &bad);
        }
    }
    for (; j < nf; j++, codes += g) put_field(t, bfq_field_at(row, row_bytes, (f0 + j) * w, w), codes, split, &bad);
    return bad;
}

int bfq_decode_fields(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t first, size_t count,
                      uint8_t *codes) {
    const size_t f0 = first / t->field_codes, nf = (count + t->field_codes - 1) / t->field_codes;
    switch (t->field_bits) {
#define WIDTH(w) case w: return decode_width(t, row, row_bytes, f0, nf, codes, w) != 0;
    WIDTH(1) WIDTH(2) WIDTH(3) WIDTH(4) WIDTH(5) WIDTH(6) WIDTH(7) WIDTH(8)
    WIDTH(9) WIDTH(10) WIDTH(11) WIDTH(12) WIDTH(13) WIDTH(14) WIDTH(15) default: WIDTH(16)
#undef WIDTH
    }
}

int bfq_padding_is_zero(const struct bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t columns) {
    if (columns == 0) return 1;
    const size_t g = t->field_codes, nf = (columns + g - 1) / g, end_bits = nf * t->field_bits;
    uint32_t last = bfq_field_at(row, row_bytes, (nf - 1) * t->field_bits, t->field_bits);
    if (last >= power(t->levels, (uint32_t)(columns - (nf - 1) * g))) return 0; /* padding codes are the top digits */
    return (end_bits & 7) == 0 || (row[row_bytes - 1] >> (end_bits & 7)) == 0;
}

ptrdiff_t bfq_unpack_rows(const bfq_code_tables *t, const uint8_t *packed, size_t row_bytes, size_t columns,
                          size_t first_row, size_t row_count, uint16_t *codes) {
    uint8_t buffer[BFQ_CHUNK_CODES + BFQ_CODE_SLACK];
    const size_t chunk = bfq_chunk_codes(t);
    for (size_t r = first_row; r < first_row + row_count; r++) {
        const uint8_t *row = packed + r * row_bytes;
        uint16_t *out = codes + r * columns;
        uint32_t bad = 0;
        if (t->levels > 256) {
            for (size_t i = 0; i < columns; i++) out[i] = (uint16_t)bfq_wide_code(t, row, row_bytes, i, &bad);
        } else {
            for (size_t start = 0; start < columns; start += chunk) {
                size_t len = columns - start < chunk ? columns - start : chunk;
                bad |= (uint32_t)bfq_decode_fields(t, row, row_bytes, start, len, buffer);
                for (size_t i = 0; i < len; i++) out[start + i] = buffer[i];
            }
        }
        if (bad || !bfq_padding_is_zero(t, row, row_bytes, columns)) return (ptrdiff_t)r;
    }
    return -1;
}

int bfq_check_row(const bfq_code_tables *t, const uint8_t *row, size_t row_bytes, size_t columns, size_t *group,
                  uint32_t *value) {
    const size_t nf = (columns + t->field_codes - 1) / t->field_codes;
    for (size_t j = 0; j < nf; j++) {
        uint32_t v = bfq_field_at(row, row_bytes, j * t->field_bits, t->field_bits);
        if (v >= t->field_limit) {
            *group = j;
            *value = v;
            return 1;
        }
    }
    return bfq_padding_is_zero(t, row, row_bytes, columns) ? 0 : 2;
}
