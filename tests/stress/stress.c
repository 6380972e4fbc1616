/* make stress: the lifecycle load (client processes: connect, one echo
 * exchange, close, in a loop) for STRESS_SECONDS (default 60) against a
 * daemon that gets a reload every 200 ms, with a TTIN or TTOU in between
 * every other time. Prints connections tried and failed, and the daemon's
 * open fds and RSS (master, and master plus workers) before and after,
 * both measured idle and settled; fails when a connection failed or when
 * they grew. STRESS_MODE: reuseport (default), shared or both. */
#define _GNU_SOURCE
#include "../integration/harness.h"

#define NCLIENTS 4
#define TICK_MS 100
/* Allowed RSS growth of the master over the run (allocator noise). */
#define RSS_SLACK_KB 512

static const char *const modes[] = { "shared", "reuseport" };

struct usage {
	int workers;
	int master_fds, all_fds;
	long master_rss, all_rss;
};

/* Wait for exactly n workers and no leaving one, then a quiet moment. */
static void
settle(struct hd *d, int n)
{
	hd_assert(d, h_wait_workers(d->master, n, 3 * H_WAIT_MS),
	    "the daemon did not settle at %d workers", n);
	usleep(300 * 1000);
}

static void
measure(struct hd *d, struct usage *u)
{
	pid_t w[64];
	int n = h_workers(d->master, w, NULL, 64);

	u->workers = n;
	u->master_fds = u->all_fds = h_proc_fds(d->master);
	u->master_rss = u->all_rss = h_proc_rss_kb(d->master);
	for (int i = 0; i < n && i < 64; i++) {
		u->all_fds += h_proc_fds(w[i]);
		u->all_rss += h_proc_rss_kb(w[i]);
	}
}

static void
print_usage(const char *when, const struct usage *u)
{
	fprintf(stderr, "stress: %-6s %d workers; fds: master %d, all %d; RSS kB: master %ld, "
	    "all %ld\n", when, u->workers, u->master_fds, u->all_fds, u->master_rss, u->all_rss);
}

static int
stress_seconds(void)
{
	const char *s = getenv("STRESS_SECONDS");
	int n = s && *s ? atoi(s) : 60;

	return n > 0 ? n : 60;
}

START_TEST(stress)
{
	const char *mode = modes[_i], *want = getenv("STRESS_MODE");
	struct hd *d;
	struct h_load *l;
	struct h_load_stats s;
	struct usage before, after;
	long long end;
	int secs = stress_seconds(), tick = 0, hups = 0, ttin = 0, ttou = 0, n = 2, done;
	char why[2048];

	if (want && *want && strcmp(want, "both") != 0 && strcmp(want, mode) != 0)
		return;
	if ((!want || !*want) && strcmp(mode, "reuseport") != 0)
		return;
	d = hd_up("[daemon]\nworkers = 2\nmode = %s\nshutdown_timeout = 5s\n\n"
	    "[listener e]\naddress = 127.0.0.1\nport = 0\n", mode);
	fprintf(stderr, "stress: mode %s, %d s, %d clients, reload every %d ms, TTIN/TTOU "
	    "between\n", mode, secs, NCLIENTS, 2 * TICK_MS);
	/* warm up: whatever a first reload allocates once is not growth */
	for (int i = 1; i <= 3; i++) {
		hd_kill(d, SIGHUP);
		hd_assert(d, hd_wait_log(d, "reload done", i, H_WAIT_MS), "warm-up reload %d", i);
		hups++;
	}
	settle(d, 2);
	measure(d, &before);

	l = h_load_start("127.0.0.1", hd_port(d, "e"), NCLIENTS);
	end = h_now_ms() + secs * 1000LL;
	while (h_now_ms() < end) {
		usleep(TICK_MS * 1000);
		if (tick++ % 2 == 0) {
			hd_kill(d, SIGHUP);
			hups++;
			n = 2;
		} else if (tick % 4 == 0 && n < 4) {
			hd_kill(d, SIGTTIN);
			ttin++;
			n++;
		} else if (tick % 4 == 2 && n > 1) {
			hd_kill(d, SIGTTOU);
			ttou++;
			n--;
		}
		hd_assert(d, h_alive(d->master), "the master died");
	}
	/* The last signal decides the count: a reload, back to 2. (A signal
	 * sent while the same one is still pending merges with it: on a
	 * loaded machine not every HUP makes a reload of its own.) */
	usleep(300 * 1000);
	done = hd_log_count(d, "reload done");
	hd_kill(d, SIGHUP);
	hups++;
	hd_assert(d, hd_wait_log(d, "reload done", done + 1, H_WAIT_MS),
	    "the last reload was not done (%d reloads read, %d done, %d HUPs sent)",
	    hd_log_count(d, "reload: reading"), hd_log_count(d, "reload done"), hups);
	h_load_progress(l, 100, H_WAIT_MS);
	h_load_stop(l);
	settle(d, 2);
	measure(d, &after);

	h_load_stats(l, &s);
	h_load_describe(l, why, sizeof why);
	fprintf(stderr, "stress: %d HUP (%d reloads done), %d TTIN, %d TTOU sent; %d back-off "
	    "respawns, %d unexpected worker exits\n", hups, hd_log_count(d, "reload done"), ttin,
	    ttou, hd_log_count(d, "respawning in"), hd_log_count(d, " warn: worker "));
	fprintf(stderr, "stress: connections: %s\n", why);
	print_usage("before", &before);
	print_usage("after", &after);
	hd_assert(d, !hd_log_has(d, "reload failed"), "a reload failed");
	hd_assert(d, s.failed == 0, "%ld connections failed", s.failed);
	hd_assert(d, after.master_fds <= before.master_fds, "the master's fds grew: %d -> %d",
	    before.master_fds, after.master_fds);
	hd_assert(d, after.all_fds <= before.all_fds, "the daemon's fds grew: %d -> %d",
	    before.all_fds, after.all_fds);
	hd_assert(d, after.master_rss <= before.master_rss + RSS_SLACK_KB,
	    "the master's RSS grew: %ld -> %ld kB", before.master_rss, after.master_rss);
	h_load_free(l);
	hd_kill(d, SIGTERM);
	hd_assert_exit(d, 0, H_WAIT_MS);
	hd_free(d);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("stress");

	tcase_set_timeout(tc, stress_seconds() + 120);
	tcase_add_loop_test(tc, stress, 0, 2);
	suite_add_tcase(s, tc);
	return h_main(s);
}
