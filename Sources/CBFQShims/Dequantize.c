/* Lookup-table dequantizer: packed fields → codes (CodeTables.h) → values through a per-row table of L floats.
 * The AVX2 kernels move table entries (permutes, gathers) and do the scalar kernels' multiplies and adds lane by lane,
 * so both give the same bits. */
#include "CPUFeatures.h"
#include "CodeTables.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#pragma STDC FP_CONTRACT OFF /* s * q + o rounds twice, as the reference does: never fused */

/* Per-row value table: L entries, zero padding so vector loads of 32 stay inside. */
#define TABLE_SLOTS 272

/* Fills `table` for `row`: the palette, s * q + o for one scale per row, or the unit q for scales per group. */
static void row_table(const bfq_dequant_job *job, size_t row, int per_group, float *table) {
    const uint32_t levels = job->tables->levels;
    if (job->palette) {
        memcpy(table, job->palette + row * job->palette_stride, levels * sizeof(float));
        return;
    }
    const int half = (int)(levels / 2);
    for (uint32_t c = 0; c < levels; c++) table[c] = (float)((int)c - half);
    if (per_group) return;
    const float s = job->scales[row], o = job->offsets ? job->offsets[row] : 0.0f;
    for (uint32_t c = 0; c < levels; c++) table[c] = s * table[c] + o;
}

/* Applies the group scales and the row offset to values [start, start + count) of `row`, held in `values`. */
__attribute__((always_inline))
static inline void scale_groups_body(const bfq_dequant_job *job, size_t row, size_t start, size_t count, float *values) {
    const size_t g = job->group_size;
    const float *scales = job->scales + row * ((job->columns + g - 1) / g);
    const float o = job->offsets ? job->offsets[row] : 0.0f;
    for (size_t i = 0; i < count;) {
        const size_t group = (start + i) / g;
        const size_t end = (group + 1) * g - start < count ? (group + 1) * g - start : count;
        const float s = scales[group];
        for (size_t k = i; k < end; k++) values[k] = values[k] * s + o;
        i = end;
    }
}

static void lookup_scalar(const float *table, const uint8_t *codes, float *values, size_t count) {
    for (size_t i = 0; i < count; i++) values[i] = table[codes[i]];
}

#if defined(__x86_64__)

/* Table entries for 8 codes: one permute for L <= 8; for L <= 32 permutes of 8-entry slices blended on bits 3 and 4;
 * else a gather. */
__attribute__((target("avx2"), always_inline))
static inline __m256 lookup8(const float *table, const __m256 slice[4], uint32_t levels, __m256i index) {
    if (levels <= 8) return _mm256_permutevar8x32_ps(slice[0], index);
    if (levels > 32) return _mm256_i32gather_ps(table, index, 4);
    const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(index, 28));
    __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(slice[0], index), _mm256_permutevar8x32_ps(slice[1], index), bit3);
    if (levels <= 16) return v;
    __m256 high = _mm256_blendv_ps(_mm256_permutevar8x32_ps(slice[2], index), _mm256_permutevar8x32_ps(slice[3], index),
                                   bit3);
    return _mm256_blendv_ps(v, high, _mm256_castsi256_ps(_mm256_slli_epi32(index, 27)));
}

/* The table's first 32 entries as four 8-entry slices, loaded once per run of lookups. */
#define TABLE_SLICES(table) { _mm256_loadu_ps(table), _mm256_loadu_ps(table + 8), _mm256_loadu_ps(table + 16), \
                              _mm256_loadu_ps(table + 24) }

/* The same loop compiled for 256-bit vectors (no FMA: the pragma above keeps two roundings). */
__attribute__((target("avx2")))
static void scale_groups_avx2(const bfq_dequant_job *job, size_t row, size_t start, size_t count, float *values) {
    scale_groups_body(job, row, start, count, values);
}

__attribute__((target("avx2")))
static void lookup_avx2(const float *table, uint32_t levels, const uint8_t *codes, float *values, size_t count) {
    const __m256 slice[4] = TABLE_SLICES(table);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + i)));
        _mm256_storeu_ps(values + i, lookup8(table, slice, levels, index));
    }
    lookup_scalar(table, codes + i, values + i, count - i);
}

/* Plain packing of w <= 4 bits straight from the row: 8 codes are the 8w bits at byte (code / 8) * w, spread to 8
 * lanes by one variable shift. Decodes codes [start, start + count) (start a multiple of 8) while a 4-byte load stays
 * inside the row; returns how many codes it did (a multiple of 8). */
__attribute__((target("avx2"), always_inline))
static inline size_t plain_lookup_w(const float *table, uint32_t w, const uint8_t *row, size_t row_bytes, size_t start,
                                    size_t count, float *values) {
    const __m256 slice[4] = TABLE_SLICES(table);
    const __m256i shifts = _mm256_mullo_epi32(_mm256_set1_epi32((int)w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i mask = _mm256_set1_epi32((1 << w) - 1);
    const uint32_t levels = 1u << w;
    size_t done = 0, byte = start / 8 * w;
    for (; done + 8 <= count && byte + 4 <= row_bytes; done += 8, byte += w) {
        __m256i bits = _mm256_set1_epi32((int)bfq_load_le32(row + byte));
        __m256i index = _mm256_and_si256(_mm256_srlv_epi32(bits, shifts), mask);
        _mm256_storeu_ps(values + done, lookup8(table, slice, levels, index));
    }
    return done;
}

__attribute__((target("avx2")))
static size_t plain_lookup_avx2(const float *table, uint32_t w, const uint8_t *row, size_t row_bytes, size_t start,
                                size_t count, float *values) {
    switch (w) {
    case 1: return plain_lookup_w(table, 1, row, row_bytes, start, count, values);
    case 2: return plain_lookup_w(table, 2, row, row_bytes, start, count, values);
    case 3: return plain_lookup_w(table, 3, row, row_bytes, start, count, values);
    default: return plain_lookup_w(table, 4, row, row_bytes, start, count, values);
    }
}
#endif

/* Values for codes [start, start + count) of a row (start a multiple of the chunk). Returns nonzero on a bad field. */
static int decode_values(const struct bfq_code_tables *t, const float *table, const uint8_t *row, size_t row_bytes,
                         size_t start, size_t count, uint8_t *codes, float *values, int vectorized) {
    if (t->levels > 256) {
        uint32_t bad = 0;
        for (size_t i = 0; i < count; i++) values[i] = table[bfq_wide_code(t, row, row_bytes, start + i, &bad)];
        return bad != 0;
    }
    if (t->field_bits == 8 && t->field_codes == 1) { /* a byte per code (byte packing of L >= 17, or L = 256) */
        const uint8_t *direct = row + start;
        uint8_t top = 0;
        for (size_t i = 0; i < count; i++) top = direct[i] > top ? direct[i] : top;
#if defined(__x86_64__)
        if (vectorized) lookup_avx2(table, t->levels, direct, values, count);
        else
#endif
        lookup_scalar(table, direct, values, count);
        return top >= t->field_limit; /* an invalid byte read table entries past L: zeros, and the row is refused */
    }
    size_t done = 0;
#if defined(__x86_64__)
    if (vectorized && t->plain_bits && t->plain_bits <= 4)
        done = plain_lookup_avx2(table, t->plain_bits, row, row_bytes, start, count, values);
    if (done == count) return 0;
#endif
    int bad = bfq_decode_fields(t, row, row_bytes, start + done, count - done, codes);
#if defined(__x86_64__)
    if (vectorized) {
        lookup_avx2(table, t->levels, codes, values + done, count - done);
        return bad;
    }
#endif
    lookup_scalar(table, codes, values + done, count - done);
    return bad;
}

static void scale_groups(const bfq_dequant_job *job, size_t row, size_t start, size_t count, float *values,
                         int vectorized) {
#if defined(__x86_64__)
    if (vectorized) {
        scale_groups_avx2(job, row, start, count, values);
        return;
    }
#endif
    scale_groups_body(job, row, start, count, values);
}

ptrdiff_t bfq_dequantize_rows(const bfq_dequant_job *job, const uint8_t *packed, void *out, size_t first_row,
                              size_t row_count) {
    const struct bfq_code_tables *t = job->tables;
    const size_t columns = job->columns, chunk = bfq_chunk_codes(t);
    const int per_group = !job->palette && job->group_size < columns;
    const int vectorized = bfq_use_avx2(job->vectorized);
    float table[TABLE_SLOTS] = {0};
    uint8_t codes[BFQ_CHUNK_CODES + BFQ_CODE_SLACK];
    float buffer[BFQ_CHUNK_CODES];
    for (size_t r = first_row; r < first_row + row_count; r++) {
        const uint8_t *row = packed + r * job->row_bytes;
        row_table(job, r, per_group, table);
        int bad = 0;
        for (size_t start = 0; start < columns; start += chunk) {
            const size_t count = columns - start < chunk ? columns - start : chunk;
            float *values = job->f16 ? buffer : (float *)out + r * columns + start;
            bad |= decode_values(t, table, row, job->row_bytes, start, count, codes, values, vectorized);
            if (per_group) scale_groups(job, r, start, count, values, vectorized);
            if (job->f16) bfq_f32_to_f16(values, (uint16_t *)out + r * columns + start, count);
        }
        if (bad || !bfq_padding_is_zero(t, row, job->row_bytes, columns)) return (ptrdiff_t)r;
    }
    return -1;
}
