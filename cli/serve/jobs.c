/* SPDX-License-Identifier: MIT */
/*
 * zbl serve, jobs.c: owns the threads that do blocking work off the event
 * loops (the server's syncs: the fdatasync, link and directory fsync of a
 * commit; the unlink and directory fsync of a delete), so that no loop
 * waits on the disk while other connections wait on the loop.
 *
 * A worker hands a job over with jobs_submit() and leaves what the job
 * touches alone until the job comes back; the mutexes here order the job
 * thread's writes before the worker's reads. Finished jobs go on the
 * worker's done list and its eventfd wakes the loop, which calls each
 * job's done.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "serve.h"
#include "cli.h"

struct jobs {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct job *head, *tail;
	bool stopping;
	int threads;
	pthread_t tid[];
};

/* Runs @job and hands it back to its worker's loop. */
static void job_run(struct job *job)
{
	struct worker *w = job->w;
	uint64_t one = 1, t0 = cli_now_ns();

	job->result = job->run(job);
	job->ns = cli_now_ns() - t0;
	pthread_mutex_lock(&w->done_lock);
	job->next = w->done;
	w->done = job;
	pthread_mutex_unlock(&w->done_lock);
	/* An eventfd write fails only when its counter would overflow. */
	if (write(w->done_fd, &one, sizeof(one)) < 0)
		return;
}

static void *job_thread(void *arg)
{
	struct jobs *jobs = arg;

	pthread_mutex_lock(&jobs->lock);
	for (;;) {
		struct job *job = jobs->head;

		if (!job) {
			if (jobs->stopping)
				break;
			pthread_cond_wait(&jobs->more, &jobs->lock);
			continue;
		}
		jobs->head = job->next;
		if (!jobs->head)
			jobs->tail = NULL;
		pthread_mutex_unlock(&jobs->lock);
		job_run(job);
		pthread_mutex_lock(&jobs->lock);
	}
	pthread_mutex_unlock(&jobs->lock);
	return NULL;
}

/* Starts @threads job threads. Returns NULL (errno set) if none could start. */
struct jobs *jobs_start(int threads)
{
	struct jobs *jobs = calloc(1, sizeof(*jobs) + (size_t)threads * sizeof(pthread_t));

	if (!jobs)
		return NULL;
	pthread_mutex_init(&jobs->lock, NULL);
	pthread_cond_init(&jobs->more, NULL);
	for (int i = 0; i < threads; i++) {
		int err = pthread_create(&jobs->tid[i], NULL, job_thread, jobs);
		if (err) {
			if (i)
				break;
			free(jobs);
			errno = err;
			return NULL;
		}
		jobs->threads++;
	}
	return jobs;
}

/* Finishes every queued job, then ends the threads. The workers must have stopped. */
void jobs_stop(struct jobs *jobs)
{
	if (!jobs)
		return;
	pthread_mutex_lock(&jobs->lock);
	jobs->stopping = true;
	pthread_cond_broadcast(&jobs->more);
	pthread_mutex_unlock(&jobs->lock);
	for (int i = 0; i < jobs->threads; i++)
		pthread_join(jobs->tid[i], NULL);
	pthread_mutex_destroy(&jobs->lock);
	pthread_cond_destroy(&jobs->more);
	free(jobs);
}

void jobs_submit(struct worker *w, struct job *job)
{
	struct jobs *jobs = w->srv->jobs;

	job->next = NULL;
	job->w = w;
	w->jobs_in_flight++;
	pthread_mutex_lock(&jobs->lock);
	if (jobs->tail)
		jobs->tail->next = job;
	else
		jobs->head = job;
	jobs->tail = job;
	pthread_cond_signal(&jobs->more);
	pthread_mutex_unlock(&jobs->lock);
}

static struct job *take_done(struct worker *w)
{
	struct job *done, *rev = NULL;
	uint64_t n;

	if (read(w->done_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return NULL;
	pthread_mutex_lock(&w->done_lock);
	done = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_lock);
	/* The list was pushed front first: reverse it to run jobs in the order they ended. */
	while (done) {
		struct job *next = done->next;
		done->next = rev;
		rev = done;
		done = next;
	}
	return rev;
}

/* Calls done for each job that has come back (which may free it). */
void jobs_reap(struct worker *w)
{
	struct job *job = take_done(w);

	while (job) {
		struct job *next = job->next;
		w->jobs_in_flight--;
		job->done(job);
		job = next;
	}
}

/*
 * Waits until every job this worker submitted has come back, without
 * running their connections on: the worker is stopping and frees them.
 */
void jobs_wait_idle(struct worker *w)
{
	while (w->jobs_in_flight) {
		struct pollfd pfd = { .fd = w->done_fd, .events = POLLIN };
		struct job *job;

		poll(&pfd, 1, -1);
		for (job = take_done(w); job; job = job->next)
			w->jobs_in_flight--;
	}
}
