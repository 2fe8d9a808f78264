/* psa-stress: schedule file writer and reader (see schedule.h). Used by the baton holder only,
 * or before the workers start, so no locking. */
#include "nemesis/schedule.h"

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
static char engine_name[16];

/* Edited replay (schedule.h): the recorded steps of thread t, in order, are
 * steps[by_thread[thread_base[t] ..< thread_base[t + 1]]]; the positions in that list of its
 * op boundaries are op_pos[op_base[t] ..< op_base[t + 1]]. Built at load, then only read. */
static uint64_t *by_thread, *thread_base, *op_pos, *op_base;
static unsigned n_indexed; /* threads in the index */
typedef struct {
    uint64_t op, point;    /* the next point of the thread: its op, its rank in the op */
} cursor_t;
static cursor_t *cursor;   /* per thread; the baton holder only */
static uint64_t followed, fallbacks;

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
    int end = 0;
    if (sscanf(line, "{\"format\":\"psa-stress-schedule\",\"version\":1,\"engine\":\"%15[a-z]\","
               "\"seed\":%" SCNu64 ",\"threads\":%u,\"depth\":%u,\"k\":%" SCNu64 "%n",
               engine_name, &h->seed, &h->threads, &h->depth, &h->k, &end) != 5 || end == 0) {
        return false;
    }
    h->edited = strncmp(line + end, ",\"edited\":true}", 15) == 0;
    return h->edited || line[end] == '}';
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
            if (total != n_steps) {
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

static bool is_boundary(char kind)
{
    return kind == 'O' || kind == 'X';
}

/* The edited-replay index (see the statics above): a counting sort of the steps by thread. */
static bool build_index(unsigned n)
{
    n_indexed = n;
    thread_base = calloc(n + 1, sizeof(*thread_base));
    op_base = calloc(n + 1, sizeof(*op_base));
    cursor = calloc(n, sizeof(*cursor)); /* first the fill positions, then the cursors */
    by_thread = calloc(n_steps + 1, sizeof(*by_thread));
    op_pos = calloc(n_steps + 1, sizeof(*op_pos));
    if (!thread_base || !op_base || !cursor || !by_thread || !op_pos) {
        return false;
    }
    for (uint64_t i = 0; i < n_steps; i++) {
        if (steps[i].at < n) {
            thread_base[steps[i].at + 1]++;
            op_base[steps[i].at + 1] += is_boundary(steps[i].kind);
        }
    }
    for (unsigned t = 0; t < n; t++) {
        thread_base[t + 1] += thread_base[t];
        op_base[t + 1] += op_base[t];
    }
    for (uint64_t i = 0; i < n_steps; i++) {
        unsigned t = steps[i].at;
        if (t >= n) {
            continue; /* the first pick: nobody reached it */
        }
        if (is_boundary(steps[i].kind)) {
            op_pos[op_base[t] + cursor[t].op++] = cursor[t].point;
        }
        by_thread[thread_base[t] + cursor[t].point++] = i;
    }
    memset(cursor, 0, n * sizeof(*cursor));
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
    if (ok && h->edited && !build_index(h->threads)) {
        ok = fail(err, len, "--replay %s: out of memory", path);
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

/* The recorded point `point` of op `op` of thread t, or NULL when the record has none. */
static const sched_step_t *edited_step(unsigned t, uint64_t op, uint64_t point)
{
    uint64_t ops = op_base[t + 1] - op_base[t], count = thread_base[t + 1] - thread_base[t];
    if (op > ops) {
        return NULL;
    }
    uint64_t begin = op == 0 ? 0 : op_pos[op_base[t] + op - 1];
    uint64_t end = op < ops ? op_pos[op_base[t] + op] : count;
    return begin + point < end ? &steps[by_thread[thread_base[t] + begin + point]] : NULL;
}

/* The record for the point `st` of thread t, advancing t's cursor. Parking ('B') depends on
 * the interleaving, so a 'B' on one side only does not shift the thread's later points: a
 * live 'B' without a recorded one takes no record, a recorded 'B' the run skipped is passed. */
static const sched_step_t *edited_record(const sched_step_t *st)
{
    cursor_t *c = &cursor[st->at];
    if (is_boundary(st->kind)) {
        c->op++;
        c->point = 0;
    }
    const sched_step_t *want = edited_step(st->at, c->op, c->point);
    if (st->kind == 'B' && (want == NULL || want->kind != 'B')) {
        return NULL;
    }
    while (st->kind != 'B' && want != NULL && want->kind == 'B') {
        want = edited_step(st->at, c->op, ++c->point);
    }
    c->point++;
    return want;
}

unsigned schedule_edited_choice(const sched_step_t *st, const bool *runnable, unsigned n)
{
    const sched_step_t *want = NULL;
    if (st->at == SCHEDULE_NOBODY) {
        want = schedule_replay_step(0);
    } else if (st->at < n_indexed) {
        want = edited_record(st);
    }
    if (want != NULL && want->kind == st->kind && want->mutex == st->mutex &&
        want->chosen < n && runnable[want->chosen]) {
        followed++;
        return want->chosen;
    }
    fallbacks++; /* no preemption: the thread that reached the point goes on when it can */
    if (st->at < n && runnable[st->at]) {
        return st->at;
    }
    unsigned t = 0;
    while (!runnable[t]) {
        t++;
    }
    return t;
}

void schedule_edited_counts(uint64_t *f, uint64_t *b)
{
    *f = followed;
    *b = fallbacks;
}
