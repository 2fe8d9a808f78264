/* psa-stress: schedule file writer and reader (see schedule.h). Used by the baton holder only,
 * or before the workers start, so no locking. */
#include "schedule.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const schedule_mutex_names[MUTEX_KINDS] = {
    "-", "key_slot", "globaldata", "rngdata", "other",
};

static FILE *out;

/* The replayed steps (read once, then only read). */
static sched_step_t *steps;
static uint64_t n_steps;
static bool complete;
static char engine_name[16];

bool schedule_out_open(const char *path, const schedule_header_t *h)
{
    out = fopen(path, "w");
    if (out == NULL) {
        return false;
    }
    fprintf(out, "{\"format\":\"psa-stress-schedule\",\"version\":1,\"engine\":\"%s\","
            "\"seed\":%" PRIu64 ",\"threads\":%u,\"depth\":%u,\"k\":%" PRIu64 "}\n",
            h->engine, h->seed, h->threads, h->depth, h->k);
    return true;
}

void schedule_format_step(char *buf, size_t len, const sched_step_t *st)
{
    char at[8] = "-";
    if (st->at != SCHEDULE_NOBODY) {
        snprintf(at, sizeof(at), "%u", (unsigned) st->at);
    }
    snprintf(buf, len, "%u %c %s %s", (unsigned) st->chosen, st->kind, at,
             schedule_mutex_names[st->mutex]);
}

void schedule_out_step(const sched_step_t *st)
{
    if (out != NULL) {
        char line[48];
        schedule_format_step(line, sizeof(line), st);
        fputs(line, out);
        fputc('\n', out);
    }
}

void schedule_out_close(uint64_t n, bool done)
{
    if (out != NULL) {
        if (done) {
            fprintf(out, "end %" PRIu64 "\n", n);
        }
        fclose(out);
        out = NULL;
    }
}

static bool fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return false;
}

static bool parse_header(const char *line, schedule_header_t *h)
{
    return sscanf(line, "{\"format\":\"psa-stress-schedule\",\"version\":1,\"engine\":\"%15[a-z]\","
                  "\"seed\":%" SCNu64 ",\"threads\":%u,\"depth\":%u,\"k\":%" SCNu64 "}",
                  engine_name, &h->seed, &h->threads, &h->depth, &h->k) == 5;
}

static bool parse_mutex(const char *name, uint8_t *mutex)
{
    for (unsigned m = 0; m < MUTEX_KINDS; m++) {
        if (strcmp(name, schedule_mutex_names[m]) == 0) {
            *mutex = (uint8_t) m;
            return true;
        }
    }
    return false;
}

static bool parse_step(const char *line, sched_step_t *st)
{
    unsigned chosen;
    char kind, at[8], mutex[16];
    if (sscanf(line, "%u %c %7s %15s", &chosen, &kind, at, mutex) != 4 ||
        strchr("SOXLUBEC", kind) == NULL || chosen >= SCHEDULE_NOBODY) {
        return false;
    }
    st->chosen = (uint16_t) chosen;
    st->kind = kind;
    st->at = strcmp(at, "-") == 0 ? SCHEDULE_NOBODY : (uint16_t) strtoul(at, NULL, 10);
    return parse_mutex(mutex, &st->mutex);
}

static bool append(sched_step_t st)
{
    static uint64_t cap;
    if (n_steps == cap) {
        cap = cap ? cap * 2 : 4096;
        sched_step_t *grown = realloc(steps, cap * sizeof(*steps));
        if (grown == NULL) {
            return false;
        }
        steps = grown;
    }
    steps[n_steps++] = st;
    return true;
}

static bool read_steps(FILE *f, const char *path, char *err, size_t len)
{
    char line[128];
    for (uint64_t number = 2; fgets(line, sizeof(line), f) != NULL; number++) {
        uint64_t total;
        sched_step_t st;
        if (sscanf(line, "end %" SCNu64, &total) == 1) {
            complete = total == n_steps;
            if (!complete) {
                return fail(err, len, "--replay %s: end line says %" PRIu64 " steps, file "
                            "has %" PRIu64, path, total, n_steps);
            }
            return true;
        }
        if (!parse_step(line, &st)) {
            return fail(err, len, "--replay %s: line %" PRIu64 " is not a schedule step",
                        path, number);
        }
        if (!append(st)) {
            return fail(err, len, "--replay %s: out of memory", path);
        }
    }
    return true;
}

bool schedule_load(const char *path, schedule_header_t *h, char *err, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return fail(err, len, "--replay %s: cannot open", path);
    }
    char line[256];
    bool ok = fgets(line, sizeof(line), f) != NULL && parse_header(line, h);
    if (!ok) {
        fail(err, len, "--replay %s: not a psa-stress schedule (bad header)", path);
    } else {
        h->engine = engine_name;
        ok = read_steps(f, path, err, len);
    }
    fclose(f);
    return ok;
}

const sched_step_t *schedule_replay_step(uint64_t index)
{
    return index < n_steps ? &steps[index] : NULL;
}

uint64_t schedule_replay_length(void)
{
    return n_steps;
}

bool schedule_replay_complete(void)
{
    return complete;
}
