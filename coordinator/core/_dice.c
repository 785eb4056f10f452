/*
 * Dice similarity of packed Bloom-filter encodings: hublink's native comparison kernel.
 *
 * Built at install time as an optional extension (setup.py); coordinator.core.kernel falls
 * back to anonlink's kernel when it is absent. Both functions compute exactly what anonlink
 * computes, 2 * |A & B| / (|A| + |B|) in double precision (0 when both are empty), and keep
 * a pair when that reaches the threshold.
 *
 * Why it is faster than anonlink's: a pair's popcounts of A and B are precomputed once per
 * record (the caller passes them), so a pair costs one AND and one POPCNT a word; and after
 * the first half of the words, the best score the pair could still reach (the intersection
 * so far plus the fewer ones either record has left) is checked against the threshold. Most
 * pairs of a search are far below it and stop there. The bound never drops a pair that
 * reaches the threshold, so results are identical, only cheaper. Right-hand records are
 * visited in blocks that stay in the core's cache while every left record passes over them.
 *
 * dice_block_parts does the same search for a row made of equal parts (a salted record
 * CLK, balanced part by part): in the one pass over a pair's words it counts the
 * intersection of each part as well as the whole, and keeps the pair when the whole row
 * reaches its threshold or some part reaches that part's own threshold (each part's follows
 * its own chance level), scored by the whole row.
 *
 * The loops are compiled twice, with and without the POPCNT instruction, and the module
 * picks one when it is imported, so a build on one x86-64 machine runs on another.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Right-hand records a block: 1024 x 256 bytes stay in a core's L2 cache. */
#define RIGHT_BLOCK 1024

/* Longest encoding in 64-bit words: counts of ones left are kept in 16 bits. */
#define MOST_WORDS 1023

#if defined(__GNUC__) || defined(__clang__)
#define POP(x) ((uint32_t)__builtin_popcountll(x))
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
static inline uint32_t POP(uint64_t x) {
    x -= (x >> 1) & 0x5555555555555555ULL;
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (uint32_t)((x * 0x0101010101010101ULL) >> 56);
}
#define ALWAYS_INLINE static __forceinline
#endif

typedef struct {
    const uint64_t *left, *right;
    Py_ssize_t nl, nr, words, steps;
    /* The step after which the bound is checked (-1: never): once, about five-eighths of the
     * way. Earlier, too few pairs can be ruled out; checking at every step costs more in
     * mispredicted branches than the words it saves. */
    Py_ssize_t check;
    const uint32_t *ones_l, *ones_r;
    /* Per record, the ones left after each whole step of four words (steps a record). */
    const uint16_t *rest_l, *rest_r;
    /* need[t]: the smallest intersection whose score reaches the threshold when the two
     * records have t ones together (above the last index: unreachable). */
    const uint32_t *need;
    double threshold;
    /* Rows of `parts` equal parts of `part_words` words (dice_block_parts only). */
    Py_ssize_t parts, part_words;
    /* Per record, the ones in each part (parts a record). */
    const uint32_t *part_l, *part_r;
    /* need_part[k * part_stride + t]: as need, for part k's threshold and its ones. */
    const uint32_t *need_part;
    Py_ssize_t part_stride;
    /* The word inside the last part before which the bound is checked, a whole step of
     * four words from the row's start (-1: never); see score_parts. */
    Py_ssize_t part_check;
} Side;

/* The pair's score if it reaches the threshold, else -1. */
ALWAYS_INLINE double score(const Side *s, Py_ssize_t i, Py_ssize_t j) {
    const uint64_t *a = s->left + i * s->words, *b = s->right + j * s->words;
    uint32_t total = s->ones_l[i] + s->ones_r[j];
    uint32_t need = s->need[total];
    const uint16_t *rl = s->rest_l + i * s->steps, *rr = s->rest_r + j * s->steps;
    uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    Py_ssize_t w = 0, step = 0;
    for (; step < s->steps; step++, w += 4) {
        c0 += POP(a[w] & b[w]);
        c1 += POP(a[w + 1] & b[w + 1]);
        c2 += POP(a[w + 2] & b[w + 2]);
        c3 += POP(a[w + 3] & b[w + 3]);
        if (step == s->check) {
            uint32_t rest = rl[step] < rr[step] ? rl[step] : rr[step];
            if (c0 + c1 + c2 + c3 + rest < need) {
                return -1.0;
            }
        }
    }
    for (; w < s->words; w++) {
        c0 += POP(a[w] & b[w]);
    }
    uint32_t both = c0 + c1 + c2 + c3;
    if (both < need) {
        return -1.0;
    }
    /* anonlink's score, to the last bit (0 for two empty encodings). */
    return total ? 2.0 * both / total : 0.0;
}

/* The ones two rows share in words [from, to). */
ALWAYS_INLINE uint32_t shared(const uint64_t *a, const uint64_t *b, Py_ssize_t from,
                              Py_ssize_t to) {
    uint32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    Py_ssize_t w = from;
    for (; w + 4 <= to; w += 4) {
        c0 += POP(a[w] & b[w]);
        c1 += POP(a[w + 1] & b[w + 1]);
        c2 += POP(a[w + 2] & b[w + 2]);
        c3 += POP(a[w + 3] & b[w + 3]);
    }
    for (; w < to; w++) {
        c0 += POP(a[w] & b[w]);
    }
    return c0 + c1 + c2 + c3;
}

/* The pair's whole-row score if the whole row reaches the threshold or some part reaches
 * its own part threshold, else -1: one pass over the words, counting each part's intersection.
 *
 * The bound: until the last part, a part still to come could reach the part threshold
 * (a balanced part can score anything), so no pair can be ruled out. Inside the last part,
 * the ones left in the row are the ones left in that part, so once no earlier part has
 * reached its threshold, the pair stops when neither the whole row nor the last part could
 * reach its own with every remaining word agreeing. Checked once, three-quarters of the way
 * through the last part, outside any loop: 4 of the shipped row's 48 words saved on most
 * pairs. A check inside the word loop (as score() has) made the pass about 12% slower than
 * this, which has no test in the loop; the bound itself gains 1-2%, within the noise of a
 * shared machine (docs/benchmarks.md, "One pass for the row and its parts"). */
ALWAYS_INLINE double score_parts(const Side *s, Py_ssize_t i, Py_ssize_t j) {
    const uint64_t *a = s->left + i * s->words, *b = s->right + j * s->words;
    uint32_t total = s->ones_l[i] + s->ones_r[j];
    uint32_t need = s->need[total];
    const uint32_t *pl = s->part_l + i * s->parts, *pr = s->part_r + j * s->parts;
    Py_ssize_t pw = s->part_words, last = s->parts - 1, w = 0;
    uint32_t both = 0;
    int hit = 0;
    const uint32_t *np = s->need_part;
    for (Py_ssize_t k = 0; k < last; k++, w += pw, np += s->part_stride) {
        uint32_t c = shared(a, b, w, w + pw);
        hit |= c >= np[pl[k] + pr[k]];
        both += c;
    }
    uint32_t need_last = np[pl[last] + pr[last]];
    uint32_t c;
    if (s->part_check > 0) {
        c = shared(a, b, w, s->part_check);
        Py_ssize_t step = s->part_check / 4 - 1;
        const uint16_t *rl = s->rest_l + i * s->steps, *rr = s->rest_r + j * s->steps;
        uint32_t rest = rl[step] < rr[step] ? rl[step] : rr[step];
        if (!hit && both + c + rest < need && c + rest < need_last) {
            return -1.0;
        }
        c += shared(a, b, s->part_check, s->words);
    } else {
        c = shared(a, b, w, s->words);
    }
    both += c;
    hit |= c >= need_last;
    if (both < need && !hit) {
        return -1.0;
    }
    /* anonlink's score, to the last bit (0 for two empty encodings). */
    return total ? 2.0 * both / total : 0.0;
}

/* Every pair of the block, right-hand blocks outermost; stops early when the output could
 * not hold another full row of a block, and says where to go on (*rb, *i). */
ALWAYS_INLINE Py_ssize_t block_body(const Side *s, int fused, int diagonal, Py_ssize_t *rb,
                                    Py_ssize_t *i, Py_ssize_t capacity, double *sims,
                                    uint32_t *oi, uint32_t *oj) {
    Py_ssize_t count = 0;
    for (; *rb < s->nr; *rb += RIGHT_BLOCK, *i = 0) {
        Py_ssize_t stop = *rb + RIGHT_BLOCK < s->nr ? *rb + RIGHT_BLOCK : s->nr;
        for (; *i < s->nl; (*i)++) {
            if (capacity - count < RIGHT_BLOCK) {
                return count;
            }
            Py_ssize_t j = *rb;
            if (diagonal && j <= *i) {
                j = *i + 1;
            }
            for (; j < stop; j++) {
                double sim = fused ? score_parts(s, *i, j) : score(s, *i, j);
                if (sim >= 0.0) {
                    sims[count] = sim;
                    oi[count] = (uint32_t)*i;
                    oj[count] = (uint32_t)j;
                    count++;
                }
            }
        }
    }
    return count;
}

ALWAYS_INLINE Py_ssize_t pairs_body(const Side *s, const int64_t *pi, const int64_t *pj,
                                    Py_ssize_t n, double *sims, int64_t *kept) {
    Py_ssize_t count = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        double sim = score(s, (Py_ssize_t)pi[k], (Py_ssize_t)pj[k]);
        if (sim >= 0.0) {
            sims[count] = sim;
            kept[count] = k;
            count++;
        }
    }
    return count;
}

static Py_ssize_t block_plain(const Side *s, int d, Py_ssize_t *rb, Py_ssize_t *i, Py_ssize_t c,
                              double *sims, uint32_t *oi, uint32_t *oj) {
    return block_body(s, 0, d, rb, i, c, sims, oi, oj);
}

static Py_ssize_t parts_plain(const Side *s, int d, Py_ssize_t *rb, Py_ssize_t *i, Py_ssize_t c,
                              double *sims, uint32_t *oi, uint32_t *oj) {
    return block_body(s, 1, d, rb, i, c, sims, oi, oj);
}

static Py_ssize_t pairs_plain(const Side *s, const int64_t *pi, const int64_t *pj, Py_ssize_t n,
                              double *sims, int64_t *kept) {
    return pairs_body(s, pi, pj, n, sims, kept);
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_POPCNT_BUILD 1
__attribute__((target("popcnt"))) static Py_ssize_t
block_popcnt(const Side *s, int d, Py_ssize_t *rb, Py_ssize_t *i, Py_ssize_t c, double *sims,
             uint32_t *oi, uint32_t *oj) {
    return block_body(s, 0, d, rb, i, c, sims, oi, oj);
}

__attribute__((target("popcnt"))) static Py_ssize_t
parts_popcnt(const Side *s, int d, Py_ssize_t *rb, Py_ssize_t *i, Py_ssize_t c, double *sims,
             uint32_t *oi, uint32_t *oj) {
    return block_body(s, 1, d, rb, i, c, sims, oi, oj);
}

__attribute__((target("popcnt"))) static Py_ssize_t
pairs_popcnt(const Side *s, const int64_t *pi, const int64_t *pj, Py_ssize_t n, double *sims,
             int64_t *kept) {
    return pairs_body(s, pi, pj, n, sims, kept);
}
#endif

static Py_ssize_t (*block_impl)(const Side *, int, Py_ssize_t *, Py_ssize_t *, Py_ssize_t,
                                double *, uint32_t *, uint32_t *) = block_plain;
static Py_ssize_t (*parts_impl)(const Side *, int, Py_ssize_t *, Py_ssize_t *, Py_ssize_t,
                                double *, uint32_t *, uint32_t *) = parts_plain;
static Py_ssize_t (*pairs_impl)(const Side *, const int64_t *, const int64_t *, Py_ssize_t,
                                double *, int64_t *) = pairs_plain;
static const char *variant = "portable";

static int check(Py_buffer *b, Py_ssize_t items, Py_ssize_t size, const char *what) {
    if (b->len < items * size) {
        PyErr_Format(PyExc_ValueError, "%s: buffer too short", what);
        return -1;
    }
    return 0;
}

/* Releases every buffer a function parsed, in one call at its end: RELEASE(&a, &b, ...). */
static void release_all(Py_buffer *const *buffers, size_t count) {
    for (size_t n = 0; n < count; n++) {
        PyBuffer_Release(buffers[n]);
    }
}
#define RELEASE(...)                                                                          \
    release_all((Py_buffer *const[]){__VA_ARGS__},                                            \
                sizeof((Py_buffer *const[]){__VA_ARGS__}) / sizeof(Py_buffer *))

#define UNREACHABLE 0xFFFFFFFFu

/* need[t] for t up to `most` ones: the smallest intersection whose Dice, 2x / t computed
 * as anonlink computes it, reaches the threshold (UNREACHABLE if none), written to `need`
 * (most + 1 entries). */
static void fill_need(uint32_t *need, Py_ssize_t most, double threshold) {
    need[0] = 0.0 >= threshold ? 0 : UNREACHABLE;
    for (Py_ssize_t t = 1; t <= most; t++) {
        double guess = threshold * (double)t / 2.0;
        Py_ssize_t x = guess <= 0.0 ? 0 : (guess > (double)t ? t + 1 : (Py_ssize_t)guess);
        while (x > 0 && 2.0 * (double)(x - 1) / (double)t >= threshold) {
            x--;
        }
        while (x <= t && 2.0 * (double)x / (double)t < threshold) {
            x++;
        }
        need[t] = x > t ? UNREACHABLE : (uint32_t)x;
    }
}

/* `tables` need tables of `most` ones each, one a threshold, end to end. Allocated here;
 * the caller frees it. NULL with an error set when memory runs out. */
static uint32_t *need_tables(Py_ssize_t most, const double *thresholds, Py_ssize_t tables) {
    uint32_t *need = PyMem_Malloc((size_t)tables * (size_t)(most + 1) * sizeof(uint32_t));
    if (need == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t k = 0; k < tables; k++) {
        fill_need(need + k * (most + 1), most, thresholds[k]);
    }
    return need;
}

/* Fills the Side from the encodings and their counts, and allocates its need table (the
 * caller frees it); -1 with an error set if they disagree. */
static int side_from(Side *s, Py_buffer *l, Py_buffer *r, Py_ssize_t words, Py_buffer *ol,
                     Py_buffer *rl, Py_buffer *orr, Py_buffer *rr, double threshold) {
    s->need = NULL;
    s->need_part = NULL;
    s->parts = 0;
    s->part_check = -1;
    s->part_stride = 0;
    if (words <= 0 || words > MOST_WORDS) {
        PyErr_SetString(PyExc_ValueError, "words must be between 1 and 1023 (65,472 bits)");
        return -1;
    }
    s->nl = l->len / (words * 8);
    s->nr = r->len / (words * 8);
    s->steps = words / 4;
    s->check = s->steps >= 2 ? (5 * s->steps + 4) / 8 - 1 : -1;
    if (s->nl > UINT32_MAX || s->nr > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many records for 32-bit indices");
        return -1;
    }
    if (check(ol, s->nl, 4, "ones_left") || check(rl, s->nl * s->steps, 2, "rest_left") ||
        check(orr, s->nr, 4, "ones_right") || check(rr, s->nr * s->steps, 2, "rest_right")) {
        return -1;
    }
    uint32_t *need = need_tables(128 * words, &threshold, 1);
    if (need == NULL) {
        return -1;
    }
    s->need = need;
    s->left = (const uint64_t *)l->buf;
    s->right = (const uint64_t *)r->buf;
    s->words = words;
    s->ones_l = (const uint32_t *)ol->buf;
    s->rest_l = (const uint16_t *)rl->buf;
    s->ones_r = (const uint32_t *)orr->buf;
    s->rest_r = (const uint16_t *)rr->buf;
    s->threshold = threshold;
    return 0;
}

static PyObject *dice_block(PyObject *self, PyObject *args) {
    Py_buffer l, r, ol, hl, orr, hr, sims, oi, oj;
    Py_ssize_t words, rb, i;
    double threshold;
    int diagonal;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*y*y*dpnnw*w*w*", &l, &r, &words, &ol, &hl, &orr, &hr,
                          &threshold, &diagonal, &rb, &i, &sims, &oi, &oj)) {
        return NULL;
    }
    PyObject *result = NULL;
    Side s;
    Py_ssize_t capacity = sims.len / 8;
    if (side_from(&s, &l, &r, words, &ol, &hl, &orr, &hr, threshold) == 0 &&
        check(&oi, capacity, 4, "left_out") == 0 && check(&oj, capacity, 4, "right_out") == 0) {
        if (capacity < RIGHT_BLOCK) {
            PyErr_Format(PyExc_ValueError, "output must hold at least %d pairs", RIGHT_BLOCK);
        } else {
            Py_ssize_t count;
            Py_BEGIN_ALLOW_THREADS;
            count = block_impl(&s, diagonal, &rb, &i, capacity, (double *)sims.buf,
                               (uint32_t *)oi.buf, (uint32_t *)oj.buf);
            Py_END_ALLOW_THREADS;
            result = Py_BuildValue("nnn", count, rb, i);
        }
    }
    PyMem_Free((void *)s.need);
    RELEASE(&l, &r, &ol, &hl, &orr, &hr, &sims, &oi, &oj);
    return result;
}

/* As dice_block, for rows of `parts` equal parts: a pair is kept when the whole row reaches
 * `threshold` or some part k reaches `part_thresholds[k]` (float64, one a part); its score
 * is the whole row's. */
static PyObject *dice_block_parts(PyObject *self, PyObject *args) {
    Py_buffer l, r, ol, hl, orr, hr, pl, pr, pt, sims, oi, oj;
    Py_ssize_t words, parts, rb, i;
    double threshold;
    int diagonal, early;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*y*y*y*y*ndy*pnnw*w*w*p", &l, &r, &words, &ol, &hl,
                          &orr, &hr, &pl, &pr, &parts, &threshold, &pt, &diagonal, &rb, &i,
                          &sims, &oi, &oj, &early)) {
        return NULL;
    }
    PyObject *result = NULL;
    Side s;
    Py_ssize_t capacity = sims.len / 8;
    if (side_from(&s, &l, &r, words, &ol, &hl, &orr, &hr, threshold) == 0 &&
        check(&oi, capacity, 4, "left_out") == 0 && check(&oj, capacity, 4, "right_out") == 0) {
        if (parts < 1 || words % parts) {
            PyErr_SetString(PyExc_ValueError, "the row must split into whole words a part");
        } else if (capacity < RIGHT_BLOCK) {
            PyErr_Format(PyExc_ValueError, "output must hold at least %d pairs", RIGHT_BLOCK);
        } else if (check(&pl, s.nl * parts, 4, "part_ones_left") == 0 &&
                   check(&pr, s.nr * parts, 4, "part_ones_right") == 0 &&
                   check(&pt, parts, 8, "part_thresholds") == 0 &&
                   (s.need_part = need_tables(128 * (words / parts), (const double *)pt.buf,
                                              parts)) != NULL) {
            s.parts = parts;
            s.part_words = words / parts;
            s.part_stride = 128 * s.part_words + 1;
            s.part_l = (const uint32_t *)pl.buf;
            s.part_r = (const uint32_t *)pr.buf;
            Py_ssize_t part_steps = s.part_words / 4;
            Py_ssize_t group = (3 * part_steps + 3) / 4 - 1;
            if (early && s.part_words % 4 == 0 && group < part_steps - 1) {
                s.part_check = (parts - 1) * s.part_words + 4 * (group + 1);
            }
            Py_ssize_t count;
            Py_BEGIN_ALLOW_THREADS;
            count = parts_impl(&s, diagonal, &rb, &i, capacity, (double *)sims.buf,
                               (uint32_t *)oi.buf, (uint32_t *)oj.buf);
            Py_END_ALLOW_THREADS;
            result = Py_BuildValue("nnn", count, rb, i);
        }
    }
    PyMem_Free((void *)s.need);
    PyMem_Free((void *)s.need_part);
    RELEASE(&l, &r, &ol, &hl, &orr, &hr, &pl, &pr, &pt, &sims, &oi, &oj);
    return result;
}

static PyObject *dice_pairs(PyObject *self, PyObject *args) {
    Py_buffer l, r, ol, hl, orr, hr, pi, pj, sims, kept;
    Py_ssize_t words;
    double threshold;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*ny*y*y*y*dy*y*w*w*", &l, &r, &words, &ol, &hl, &orr, &hr,
                          &threshold, &pi, &pj, &sims, &kept)) {
        return NULL;
    }
    PyObject *result = NULL;
    Side s;
    Py_ssize_t n = pi.len / 8;
    if (side_from(&s, &l, &r, words, &ol, &hl, &orr, &hr, threshold) == 0 &&
        check(&pj, n, 8, "right_index") == 0 && check(&sims, n, 8, "sims_out") == 0 &&
        check(&kept, n, 8, "kept_out") == 0) {
        const int64_t *a = (const int64_t *)pi.buf, *b = (const int64_t *)pj.buf;
        Py_ssize_t k;
        for (k = 0; k < n; k++) {
            if (a[k] < 0 || a[k] >= s.nl || b[k] < 0 || b[k] >= s.nr) {
                break;
            }
        }
        if (k < n) {
            PyErr_SetString(PyExc_IndexError, "pair index out of range");
        } else {
            Py_ssize_t count;
            Py_BEGIN_ALLOW_THREADS;
            count = pairs_impl(&s, a, b, n, (double *)sims.buf, (int64_t *)kept.buf);
            Py_END_ALLOW_THREADS;
            result = PyLong_FromSsize_t(count);
        }
    }
    PyMem_Free((void *)s.need);
    RELEASE(&l, &r, &ol, &hl, &orr, &hr, &pi, &pj, &sims, &kept);
    return result;
}

/* ------------------------------------------------------------------------ counts
 * Each record's ones, and the ones it has left after each step of four words: what the
 * bound in score() reads. */
ALWAYS_INLINE void counts_body(const uint64_t *rows, Py_ssize_t n, Py_ssize_t words,
                               uint32_t *ones, uint16_t *rest) {
    Py_ssize_t steps = words / 4;
    for (Py_ssize_t r = 0; r < n; r++) {
        const uint64_t *a = rows + r * words;
        uint32_t total = 0;
        for (Py_ssize_t w = 0; w < words; w++) {
            total += POP(a[w]);
        }
        ones[r] = total;
        uint32_t left = total;
        for (Py_ssize_t step = 0; step < steps; step++) {
            const uint64_t *q = a + 4 * step;
            left -= POP(q[0]) + POP(q[1]) + POP(q[2]) + POP(q[3]);
            rest[r * steps + step] = (uint16_t)left;
        }
    }
}

static void counts_plain(const uint64_t *rows, Py_ssize_t n, Py_ssize_t words, uint32_t *ones,
                         uint16_t *rest) {
    counts_body(rows, n, words, ones, rest);
}

#ifdef HAVE_POPCNT_BUILD
__attribute__((target("popcnt"))) static void
counts_popcnt(const uint64_t *rows, Py_ssize_t n, Py_ssize_t words, uint32_t *ones,
              uint16_t *rest) {
    counts_body(rows, n, words, ones, rest);
}
#endif

static void (*counts_impl)(const uint64_t *, Py_ssize_t, Py_ssize_t, uint32_t *,
                           uint16_t *) = counts_plain;

static PyObject *counts(PyObject *self, PyObject *args) {
    Py_buffer rows, ones, rest;
    Py_ssize_t words;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &rows, &words, &ones, &rest)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t n = words > 0 && words <= MOST_WORDS ? rows.len / (words * 8) : -1;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "words must be between 1 and 1023 (65,472 bits)");
    } else if (check(&ones, n, 4, "ones_out") == 0 &&
               check(&rest, n * (words / 4), 2, "rest_out") == 0) {
        Py_BEGIN_ALLOW_THREADS;
        counts_impl((const uint64_t *)rows.buf, n, words, (uint32_t *)ones.buf,
                    (uint16_t *)rest.buf);
        Py_END_ALLOW_THREADS;
        result = PyLong_FromSsize_t(n);
    }
    RELEASE(&rows, &ones, &rest);
    return result;
}

/* ------------------------------------------------------------------------ band join
 * The pairs of records whose keys in one band are equal, screened on a sketch (the first
 * words of each encoding, copied compactly so they stay in cache): a pair is kept when the
 * sketches differ in at most `limit` bits. A hash join: left records are counted into
 * buckets by a hash of their key and laid out bucket by bucket; each right record then
 * reads one bucket. Its cost follows the records and the colliding pairs, with no sort and
 * no expanded list of pairs. Kept pairs come back as codes i * width + j. */

typedef struct {
    int64_t *codes;
    Py_ssize_t count, size;
    long long collided; /* pairs with equal keys, screened or not */
} Codes;

static int codes_push(Codes *c, int64_t code) {
    if (c->count == c->size) {
        Py_ssize_t size = c->size ? 2 * c->size : 4096;
        int64_t *grown = PyMem_RawRealloc(c->codes, (size_t)size * sizeof(int64_t));
        if (grown == NULL) {
            return -1;
        }
        c->codes = grown;
        c->size = size;
    }
    c->codes[c->count++] = code;
    return 0;
}

ALWAYS_INLINE uint32_t differing(const uint64_t *a, const uint64_t *b, Py_ssize_t words) {
    uint32_t d = 0;
    for (Py_ssize_t w = 0; w < words; w++) {
        d += POP(a[w] ^ b[w]);
    }
    return d;
}

ALWAYS_INLINE int join_body(const uint64_t *kl, Py_ssize_t nl, const uint64_t *kr, Py_ssize_t nr,
                            int same, const uint64_t *sl, const uint64_t *sr, Py_ssize_t sw,
                            uint32_t limit, int64_t width, Codes *out) {
    int bits = 1;
    while (((Py_ssize_t)1 << bits) < nl && bits < 40) {
        bits++;
    }
    Py_ssize_t buckets = (Py_ssize_t)1 << bits;
    uint32_t *start = PyMem_RawCalloc((size_t)buckets + 1, sizeof(uint32_t));
    uint32_t *order = PyMem_RawMalloc((size_t)(nl ? nl : 1) * sizeof(uint32_t));
    uint64_t *keys = PyMem_RawMalloc((size_t)(nl ? nl : 1) * sizeof(uint64_t));
    int failed = start == NULL || order == NULL || keys == NULL;
    if (!failed) {
#define BUCKET(k) ((Py_ssize_t)(((k) * 0x9E3779B97F4A7C15ULL) >> (64 - bits)))
        for (Py_ssize_t i = 0; i < nl; i++) {
            start[BUCKET(kl[i]) + 1]++;
        }
        for (Py_ssize_t b = 0; b < buckets; b++) {
            start[b + 1] += start[b];
        }
        /* Filled in index order, so each bucket lists its records in index order; after
         * this, start[b] is where bucket b ends (and b + 1 begins). */
        for (Py_ssize_t i = 0; i < nl; i++) {
            uint32_t at = start[BUCKET(kl[i])]++;
            order[at] = (uint32_t)i;
            keys[at] = kl[i];
        }
        for (Py_ssize_t j = 0; j < nr && !failed; j++) {
            uint64_t key = kr[j];
            Py_ssize_t b = BUCKET(key);
            const uint64_t *sketch = sr + j * sw;
            for (uint32_t at = b ? start[b - 1] : 0; at < start[b]; at++) {
                if (keys[at] != key) {
                    continue;
                }
                uint32_t i = order[at];
                if (same && (Py_ssize_t)i >= j) {
                    break; /* index order: the rest of the bucket is at or past j */
                }
                out->collided++;
                if (differing(sl + (Py_ssize_t)i * sw, sketch, sw) <= limit &&
                    codes_push(out, (int64_t)i * width + j) < 0) {
                    failed = 1;
                    break;
                }
            }
        }
#undef BUCKET
    }
    PyMem_RawFree(start);
    PyMem_RawFree(order);
    PyMem_RawFree(keys);
    return failed ? -1 : 0;
}

static int join_plain(const uint64_t *kl, Py_ssize_t nl, const uint64_t *kr, Py_ssize_t nr,
                      int same, const uint64_t *sl, const uint64_t *sr, Py_ssize_t sw,
                      uint32_t limit, int64_t width, Codes *out) {
    return join_body(kl, nl, kr, nr, same, sl, sr, sw, limit, width, out);
}

#ifdef HAVE_POPCNT_BUILD
__attribute__((target("popcnt"))) static int
join_popcnt(const uint64_t *kl, Py_ssize_t nl, const uint64_t *kr, Py_ssize_t nr, int same,
            const uint64_t *sl, const uint64_t *sr, Py_ssize_t sw, uint32_t limit, int64_t width,
            Codes *out) {
    return join_body(kl, nl, kr, nr, same, sl, sr, sw, limit, width, out);
}
#endif

static int (*join_impl)(const uint64_t *, Py_ssize_t, const uint64_t *, Py_ssize_t, int,
                        const uint64_t *, const uint64_t *, Py_ssize_t, uint32_t, int64_t,
                        Codes *) = join_plain;

static PyObject *band_join(PyObject *self, PyObject *args) {
    Py_buffer kl, kr, sl, sr;
    Py_ssize_t sw;
    unsigned int limit;
    long long width;
    int same;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*py*y*nIL", &kl, &kr, &same, &sl, &sr, &sw, &limit,
                          &width)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t nl = kl.len / 8, nr = kr.len / 8;
    if (sw <= 0 || check(&sl, nl * sw, 8, "sketch_left") || check(&sr, nr * sw, 8, "sketch_right")) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "sketch words must be positive");
        }
    } else if (nl > UINT32_MAX || width < nr) {
        PyErr_SetString(PyExc_ValueError, "too many records, or width below the right side");
    } else {
        Codes out = {NULL, 0, 0, 0};
        int status;
        Py_BEGIN_ALLOW_THREADS;
        status = join_impl((const uint64_t *)kl.buf, nl, (const uint64_t *)kr.buf, nr, same,
                           (const uint64_t *)sl.buf, (const uint64_t *)sr.buf, sw, limit,
                           (int64_t)width, &out);
        Py_END_ALLOW_THREADS;
        if (status < 0) {
            PyErr_NoMemory();
        } else {
            result = Py_BuildValue("y#L", (const char *)(out.codes ? out.codes : (int64_t *)""),
                                   out.count * (Py_ssize_t)sizeof(int64_t), out.collided);
        }
        PyMem_RawFree(out.codes);
    }
    RELEASE(&kl, &kr, &sl, &sr);
    return result;
}

/* Every pair of a few left records with every right record whose sketches differ in at most
 * `limit` bits: the screen of an incremental run, where a refresh's changed records meet all
 * the records held and no band keys are worth building. Right records are visited in blocks
 * that stay in cache while every left record passes over them, so kept pairs come back in
 * block order, as codes i * width + j; the caller sorts them if it needs to. */

#define SCREEN_BLOCK 4096

ALWAYS_INLINE int near_body(const uint64_t *sl, Py_ssize_t nl, const uint64_t *sr, Py_ssize_t nr,
                            Py_ssize_t sw, uint32_t limit, int64_t width, Codes *out) {
    /* Bits differing per right record of the block: counted in one tight loop, then read
     * for the few that pass, so the counting has no branch in it. */
    uint32_t differ[SCREEN_BLOCK];
    for (Py_ssize_t first = 0; first < nr; first += SCREEN_BLOCK) {
        Py_ssize_t last = first + SCREEN_BLOCK < nr ? first + SCREEN_BLOCK : nr;
        const uint64_t *block = sr + first * sw;
        Py_ssize_t n = last - first;
        for (Py_ssize_t i = 0; i < nl; i++) {
            const uint64_t *mine = sl + i * sw;
            if (sw == 4) {
                uint64_t m0 = mine[0], m1 = mine[1], m2 = mine[2], m3 = mine[3];
                for (Py_ssize_t j = 0; j < n; j++) {
                    const uint64_t *r = block + 4 * j;
                    differ[j] = POP(m0 ^ r[0]) + POP(m1 ^ r[1]) + POP(m2 ^ r[2]) + POP(m3 ^ r[3]);
                }
            } else {
                for (Py_ssize_t j = 0; j < n; j++) {
                    differ[j] = differing(mine, block + j * sw, sw);
                }
            }
            for (Py_ssize_t j = 0; j < n; j++) {
                if (differ[j] <= limit && codes_push(out, (int64_t)i * width + first + j) < 0) {
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int near_plain(const uint64_t *sl, Py_ssize_t nl, const uint64_t *sr, Py_ssize_t nr,
                      Py_ssize_t sw, uint32_t limit, int64_t width, Codes *out) {
    return near_body(sl, nl, sr, nr, sw, limit, width, out);
}

#ifdef HAVE_POPCNT_BUILD
__attribute__((target("popcnt"))) static int
near_popcnt(const uint64_t *sl, Py_ssize_t nl, const uint64_t *sr, Py_ssize_t nr, Py_ssize_t sw,
            uint32_t limit, int64_t width, Codes *out) {
    return near_body(sl, nl, sr, nr, sw, limit, width, out);
}
#endif

static int (*near_impl)(const uint64_t *, Py_ssize_t, const uint64_t *, Py_ssize_t, Py_ssize_t,
                        uint32_t, int64_t, Codes *) = near_plain;

static PyObject *sketch_near(PyObject *self, PyObject *args) {
    Py_buffer sl, sr;
    Py_ssize_t sw;
    unsigned int limit;
    long long width;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nIL", &sl, &sr, &sw, &limit, &width)) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t nl = sw > 0 ? sl.len / (8 * sw) : 0, nr = sw > 0 ? sr.len / (8 * sw) : 0;
    if (sw <= 0 || check(&sl, nl * sw, 8, "sketch_left") || check(&sr, nr * sw, 8, "sketch_right")) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "sketch words must be positive");
        }
    } else if (width < nr) {
        PyErr_SetString(PyExc_ValueError, "width below the right side");
    } else {
        Codes out = {NULL, 0, 0, 0};
        int status;
        Py_BEGIN_ALLOW_THREADS;
        status = near_impl((const uint64_t *)sl.buf, nl, (const uint64_t *)sr.buf, nr, sw, limit,
                           (int64_t)width, &out);
        Py_END_ALLOW_THREADS;
        if (status < 0) {
            PyErr_NoMemory();
        } else {
            result = PyBytes_FromStringAndSize(
                (const char *)(out.codes ? out.codes : (int64_t *)""),
                out.count * (Py_ssize_t)sizeof(int64_t));
        }
        PyMem_RawFree(out.codes);
    }
    RELEASE(&sl, &sr);
    return result;
}

static PyMethodDef methods[] = {
    {"dice_block", dice_block, METH_VARARGS,
     "dice_block(left, right, words, ones_left, rest_left, ones_right, rest_right, "
     "threshold, diagonal, block, row, sims_out, left_out, right_out) -> (count, block, row)"},
    {"dice_block_parts", dice_block_parts, METH_VARARGS,
     "dice_block_parts(left, right, words, ones_left, rest_left, ones_right, rest_right, "
     "part_ones_left, part_ones_right, parts, threshold, part_thresholds, diagonal, block, row, "
     "sims_out, left_out, right_out, early_exit) -> (count, block, row)"},
    {"dice_pairs", dice_pairs, METH_VARARGS,
     "dice_pairs(left, right, words, ones_left, rest_left, ones_right, rest_right, "
     "threshold, left_index, right_index, sims_out, kept_out) -> count"},
    {"counts", counts, METH_VARARGS,
     "counts(rows, words, ones_out, rest_out) -> records counted"},
    {"band_join", band_join, METH_VARARGS,
     "band_join(keys_left, keys_right, same, sketch_left, sketch_right, sketch_words, limit, "
     "width) -> (bytes of int64 codes i * width + j, pairs collided)"},
    {"sketch_near", sketch_near, METH_VARARGS,
     "sketch_near(sketch_left, sketch_right, sketch_words, limit, width) -> bytes of int64 "
     "codes i * width + j"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_dice", "Native Dice kernel (see coordinator.core.kernel).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__dice(void) {
#ifdef HAVE_POPCNT_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) {
        block_impl = block_popcnt;
        parts_impl = parts_popcnt;
        pairs_impl = pairs_popcnt;
        join_impl = join_popcnt;
        near_impl = near_popcnt;
        counts_impl = counts_popcnt;
        variant = "popcnt";
    }
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "RIGHT_BLOCK", RIGHT_BLOCK) < 0 ||
        PyModule_AddStringConstant(m, "VARIANT", variant) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
