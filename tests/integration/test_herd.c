/* Integration: shared mode wakes one worker per connection, not every idle
 * one (the thundering herd; EPOLLEXCLUSIVE in libev's epoll, issue 6), the
 * workers still take turns, and pauses (the fair-share throttle, a stopped
 * worker) leave nothing unserved. Counts, not timings. */
#define _GNU_SOURCE
#include "harness.h"

#define MAXW 8

/* A worker's voluntary context switches: each time it went to sleep, so
 * one per wake-up. -1 if none. */
static long
wakeups(pid_t pid)
{
	char buf[64];

	if (h_proc_status(pid, "voluntary_ctxt_switches", buf, sizeof buf) < 0)
		return -1;
	return atol(buf);
}

static long
wakeups_all(struct hd *d, const pid_t *w, int n)
{
	long sum = 0, x;

	for (int i = 0; i < n; i++) {
		x = wakeups(w[i]);
		hd_assert(d, x >= 0, "worker %d (pid %d): no /proc status", i, (int)w[i]);
		sum += x;
	}
	return sum;
}

/* The workers' exit lines, after TERM: how many, and per worker (by
 * index) connections accepted, batches that found nothing, fair-share
 * pauses. */
struct exits {
	int n;
	unsigned long accepted[MAXW], empty[MAXW], pauses[MAXW];
};

static void
parse_exits(struct hd *d, struct exits *e)
{
	char *log = hd_log(d), *p = log;

	memset(e, 0, sizeof *e);
	while ((p = strstr(p, "worker "))) {
		unsigned long acc, eagain, empty, pauses;
		int idx;

		if (sscanf(p, "worker %d: %lu connections accepted; accept() said EAGAIN %lu times, "
		    "%lu of them at once (a wake-up for nothing); %lu fair-share pauses",
		    &idx, &acc, &eagain, &empty, &pauses) == 5 && idx >= 0 && idx < MAXW) {
			e->accepted[idx] = acc;
			e->empty[idx] = empty;
			e->pauses[idx] = pauses;
			e->n++;
		}
		p++;
	}
	free(log);
}

/* One daytime exchange: connect, read the line and the close. The worker
 * that accepts writes and closes at once: one wake-up per connection is
 * all it takes. */
static int
daytime(int port)
{
	char buf[256];
	int fd = h_connect("127.0.0.1", port);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = h_recv_until_close(fd, buf, sizeof buf, H_WAIT_MS);
	close(fd);
	return n > 0;
}

/* 4 idle workers, 200 connections one at a time: with a herd each wakes
 * all four (about 3 wake-ups for nothing per connection, and accept()
 * never sees them: a woken worker that finds the queue empty sleeps on in
 * epoll_wait). Exclusive: about one wake-up per connection. */
START_TEST(one_wakeup_per_connection)
{
	struct hd *d = hd_up("[daemon]\nworkers = 4\nmode = shared\nshutdown_timeout = 2s\n\n"
	    "[listener d]\naddress = 127.0.0.1\nport = 0\nhandler = daytime\n");
	int port = hd_port(d, "d"), n = 200, warm = 16;
	long before, after;
	double per;
	pid_t w[4];
	struct exits e;
	unsigned long sum = 0, empty = 0, least = ~0UL;

	hd_assert(d, h_wait_workers(d->master, 4, H_WAIT_MS), "4 workers");
	for (int i = 0; i < 4; i++)
		hd_assert(d, (w[i] = hd_worker(d, i)) > 0, "worker %d pid", i);
	/* each worker takes the socket over at its first wake-up */
	for (int i = 0; i < warm; i++)
		hd_assert(d, daytime(port), "warm-up connection %d", i);
	before = wakeups_all(d, w, 4);
	for (int i = 0; i < n; i++)
		hd_assert(d, daytime(port), "connection %d not served", i);
	usleep(50 * 1000);
	after = wakeups_all(d, w, 4);
	per = (double)(after - before) / n;
	fprintf(stderr, "herd: 4 workers, shared: %.2f wake-ups per connection\n", per);
	hd_assert(d, per < 1.5, "%.2f worker wake-ups per connection (%ld for %d): the herd is "
	    "back (about 4 with it, 1 without)", per, after - before, n);

	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	parse_exits(d, &e);
	hd_assert(d, e.n == 4, "%d worker exit lines, want 4", e.n);
	for (int i = 0; i < 4; i++) {
		sum += e.accepted[i];
		empty += e.empty[i];
		if (e.accepted[i] < least)
			least = e.accepted[i];
	}
	hd_assert(d, sum == (unsigned long)(n + warm), "%lu accepted, %d connections", sum, n + warm);
	hd_assert(d, empty * 2 < sum, "%lu batches found nothing for %lu connections", empty, sum);
	/* they take turns (each moves to the back of the queue every
	 * WORKER_EXCL_ROTATE accepts), not the first in the queue all */
	hd_assert(d, least * 4 * 2 >= sum, "a worker took %lu of %lu connections", least, sum);
	hd_free(d);
}
END_TEST

/* 2 workers under a load of 8 clients: the fair-share throttle pauses
 * (its own DEL and ADD while the entry is ours), and no connection fails
 * or waits; afterwards one client at a time is still served at once. */
START_TEST(fair_pauses_resume)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = shared\nshutdown_timeout = 2s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	int port = hd_port(d, "e");
	struct h_load *l;
	struct h_load_stats s;
	struct exits e;
	char why[2048];
	unsigned long sum = 0, pauses = 0;

	hd_assert(d, h_wait_workers(d->master, 2, H_WAIT_MS), "2 workers");
	l = h_load_start("127.0.0.1", port, 8);
	hd_assert(d, h_load_progress(l, 3000, 4 * H_WAIT_MS), "the load is not answered");
	h_load_stop(l);
	h_load_stats(l, &s);
	h_load_describe(l, why, sizeof why);
	fprintf(stderr, "herd: fair_pauses_resume: %s\n", why);
	hd_assert(d, s.failed == 0, "%ld connections failed: %s", s.failed, why);
	h_load_free(l);
	for (int i = 0; i < 40; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "sequential echo %d after the load", i);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	parse_exits(d, &e);
	hd_assert(d, e.n == 2, "%d worker exit lines, want 2", e.n);
	for (int i = 0; i < 2; i++) {
		sum += e.accepted[i];
		pauses += e.pauses[i];
	}
	fprintf(stderr, "herd: fair_pauses_resume: accepted %lu + %lu, %lu fair-share pauses\n",
	    e.accepted[0], e.accepted[1], pauses);
	hd_assert(d, sum >= (unsigned long)s.ok + 40, "%lu accepted, %ld + 40 exchanges", sum, s.ok);
	hd_assert(d, e.accepted[0] > 0 && e.accepted[1] > 0, "a worker accepted nothing");
	hd_free(d);
}
END_TEST

/* A stopped worker (SIGSTOP) sleeps on no epoll: the exclusive wake-up
 * goes to the other, connection after connection; continued, both serve. */
START_TEST(stopped_worker_skipped)
{
	struct hd *d = hd_up("[daemon]\nworkers = 2\nmode = shared\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n");
	int port = hd_port(d, "e");
	pid_t w0, w1;

	hd_assert(d, h_wait_workers(d->master, 2, H_WAIT_MS), "2 workers");
	w0 = hd_worker(d, 0);
	w1 = hd_worker(d, 1);
	hd_assert(d, w0 > 0 && w1 > 0, "worker pids");
	for (int i = 0; i < 20; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d", i);
	ck_assert(kill(w0, SIGSTOP) == 0);
	for (int i = 0; i < 40; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d with worker 0 stopped", i);
	ck_assert(kill(w0, SIGCONT) == 0);
	ck_assert(kill(w1, SIGSTOP) == 0);
	for (int i = 0; i < 40; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d with worker 1 stopped", i);
	ck_assert(kill(w1, SIGCONT) == 0);
	for (int i = 0; i < 20; i++)
		hd_assert(d, h_echo_at("127.0.0.1", port), "echo %d after", i);
	hd_free(d);
}
END_TEST

static Suite *
herd_suite(void)
{
	Suite *s = suite_create("herd");
	TCase *tc = tcase_create("herd");

	tcase_add_test(tc, one_wakeup_per_connection);
	tcase_add_test(tc, fair_pauses_resume);
	tcase_add_test(tc, stopped_worker_skipped);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return h_main(herd_suite());
}
