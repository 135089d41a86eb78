/* Benchmark probe, not part of the product: what a native single-pass parser of Bedrock's
 * `.jsonl.out` lines would cost. Per line it finds the "modelOutput" key, then the first "text"
 * key after it, and JSON-unescapes that string into `out` (no \uXXXX decoding, no validation,
 * no Arrow buffers, one thread). bench/native_floor/run.py times it over a folder of outputs;
 * bench/RESULTS.md compares it with the polars parse joined_results runs. */
#include <stddef.h>
#include <string.h>

static const char *find(const char *p, const char *end, const char *needle, size_t n) {
    while (p + n <= end) {
        const char *q = memchr(p, needle[0], (size_t)(end - p) - n + 1);
        if (!q) return NULL;
        if (memcmp(q, needle, n) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

long scan(const char *buf, long len, char *out, long out_cap, long *out_len) {
    const char *p = buf, *end = buf + len;
    char *o = out, *o_end = out + out_cap;
    long lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        const char *t = find(p, nl, "\"modelOutput\"", 13);
        int ok = 0;
        while (t && (t = find(t, nl, "\"text\"", 6))) {  /* the key, not the value "type": "text" */
            t += 6;
            while (t < nl && *t == ' ') t++;
            if (t < nl && *t == ':') { t++; while (t < nl && *t == ' ') t++; ok = 1; break; }
        }
        if (ok && t < nl && *t == '"') {
            t++;
            while (t < nl && *t != '"') {
                const char *run = t;
                while (run < nl && *run != '\\' && *run != '"') run++;
                if (o + (run - t) + 1 > o_end) return -1;
                memcpy(o, t, (size_t)(run - t));
                o += run - t;
                t = run;
                if (t + 1 < nl && *t == '\\') {
                    char c = t[1];
                    *o++ = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
                    t += c == 'u' ? 6 : 2;
                }
            }
        }
        lines++;
        p = nl + 1;
    }
    *out_len = o - out;
    return lines;
}
