// Package tables writes and maintains the inference table: one Parquet row
// per prediction (and per shadow prediction), partitioned by date, and the
// ground-truth labels beside it:
//
//	<dir>/date=<YYYY-MM-DD>/part-<replica>-<unixnano>-<seq>.parquet          (predictions)
//	<dir>/_labels/date=<YYYY-MM-DD>/part-<replica>-<unixnano>-<seq>.parquet  (ground-truth labels)
//
// so that pandas, pyarrow, Spark and DuckDB read <dir> (or the glob
// <dir>/date=*/*.parquet) as a hive-partitioned dataset with no option:
// no column is named date, so the partition column collides with none;
// endpoint and model are columns only; and those readers skip the labels,
// as they skip every name starting with '_' or '.' (the labels are read
// with the glob <dir>/_labels/*/*.parquet, and joined by request_id).
// <replica> is the writer's replica id (Options.Replica), or, without
// one, the name is part-<unixnano>-<seq>.parquet; beside them, each writer keeps
//
//	<dir>/_wal/<replica>/<seq>.wal          its write-ahead log
//	<dir>/_spill/<replica>/<seq>.spill      rows Write spilled
//	<dir>/_quarantine/<replica>/<seq>.rec   records no disk could ever write
//	<dir>/_owners/<replica>.lock            locked while it is open (see Fleets)
//
// (directly in _wal, _spill and _quarantine without a replica id, whose
// owner lock is _owners/_.lock), and the table has one file <dir>/_deletes,
// the tombstones of DeleteEntity and the lock of the table's files (see
// Fleets).
//
// A row's partition is the UTC date of its timestamp; no name a caller
// chooses (an endpoint, a model asked for that does not exist) ever makes
// a directory. Files are standard Parquet (snappy-compressed) written
// under a hidden temporary name (".part-....parquet.tmp", and while
// DeleteEntity rewrites one ".del-part-....parquet.tmp") and renamed when
// complete, so a reader never sees half a file; List and Dir.ReadRows
// ignore temporary files, and readers that skip names starting with '.' or
// '_' see only complete data.
//
// # The old layout
//
// Earlier versions partitioned rows by endpoint (or, for rows without one,
// by model name, or model=_unknown), then date:
// <dir>/endpoint=<e>/date=<d>/ and <dir>/model=<m>/date=<d>/. A Writer
// moves those files into <dir>/date=<d>/ at Open, and every minute after
// (for the files a writer of an older version in the same fleet adds while
// the fleet is upgraded), holding the table's lock exclusively (see
// Fleets). Each file moves by one rename, keeping its name, or, if the
// date partition already has one of that name, with "~<n>" before
// ".parquet"; the emptied directories are removed. A crash in the middle
// leaves every file in one place or the other, and the next Open goes on.
// Meanwhile List, Dir.ReadRows and Writer.ReadRows read the files of both
// layouts, each once. Other readers see the mixed layout only until the
// first Writer of this version opens.
//
// # Writing
//
// A Writer takes rows through Write, which never blocks and never fails: it
// puts the row on a bounded queue, or, when the queue is full, appends it to
// a spill file under <dir>/_spill/<replica>/ (Options.Spill) or drops it. One
// goroutine takes rows off the queue and appends each to the open Parquet
// file of its partition, rolling the file when its estimated size reaches
// Options.MaxFileBytes or its age Options.MaxFileAge. When the queue is
// empty, and the log is not failing, it also takes the spill files and
// writes their rows the same way. Ages, the FlushInterval ticker and the
// default timestamp of a row go by Options.Clock, which a test replaces by
// a clock.Fake that it moves by hand.
//
// # Durability
//
// Before a row goes into a Parquet file's buffers, the goroutine appends it,
// as one length-prefixed, checksummed binary record, to a write-ahead log
// segment under <dir>/_wal/<replica>/. The log is written to the OS every 256 KiB and
// fsync'd every Options.FlushInterval (and every 8 MiB). Each open Parquet file remembers the first log
// segment holding one of its rows; after files are renamed the goroutine
// starts a new segment and deletes the segments older than every open
// file's first one: a segment is deleted only when all its rows are in
// renamed (and fsync'd) Parquet files. Spill files hold the same records,
// appended with one write per row, so a spilled row is with the OS as soon
// as Write returns (and fsync'd at the next FlushInterval); the goroutine
// moves a spill file's rows into the log, fsyncs it, and only then deletes
// the spill file.
//
// Open first recovers what a previous run of its replica left: it deletes
// the replica's temporary Parquet files, then writes the rows of every leftover log segment and spill file
// into Parquet files the same way (through a new log), deleting each old
// segment once the new log holding its rows is fsync'd, and completes the
// files. A record torn by a crash, or damaged, fails its checksum and is
// skipped and counted in Stats.Skipped.
//
// # Quarantine
//
// A record that no disk could ever write is not retried and never stops the
// writer or Open: a row whose timestamp has no YYYY-MM-DD date, or a
// record whose checksum holds but which does not decode as a row (written
// by another version, say). The writer appends it, in the log's record format,
// to <dir>/_quarantine/<replica>/<seq>.rec, fsyncs it, logs it, and counts it in
// Stats.Quarantined; the other records of its segment are written as
// usual. Nothing reads the quarantine again: it is there for an operator.
//
// # I/O errors
//
// An I/O error never stops the writer. The log keeps every record until an
// fsync covers it; after a failed write or fsync it closes that segment
// and, at the next FlushInterval, writes those records again, whole, to a
// new segment (a crash may then replay a record twice: at least once, never
// silently lost). While the disk fails it keeps up to 64 MiB of records,
// then gives the oldest up (Stats.Unlogged: their rows still reach their
// files unless the process crashes first). A Parquet file that fails is
// discarded and its rows, kept in the log, are written by the next Open
// (Stats.Failed); the next row of that partition starts a new file. Every
// error is counted (Stats.Errors), the first of a spell is logged, and a
// lasting one every 10 s; Healthy returns the last error from the first
// one until a FlushInterval passes without error with every row taken
// since in an fsync'd segment or a renamed file. Open itself fails only if it cannot create
// or list its directories or lock its files (see Fleets): a segment it cannot replay for an I/O error is
// left for the next Open.
//
// So a crash (kill -9) loses at most the rows the goroutine took in the last
// FlushInterval, plus the rows still waiting in the in-memory queue; while
// Healthy reports an error, also those taken since it began. The
// goroutine empties the queue far faster than a gateway fills it, and a full
// queue spills to disk, so in practice that is the last FlushInterval. A
// crash after a file was renamed but before its log segments were deleted
// writes those rows again at the next Open (at least once, never silently
// lost).
//
// # Fleets
//
// Several gateways (replicas) may write one table, in a directory they
// share (a volume mounted by each, possibly over NFS): each opens its
// Writer with its own Options.Replica, and readers see one table. A
// replica id is 1 to 64 letters, digits, '-', '_' or '.', starting with a
// letter or digit. Every file a Writer creates carries its id, in its name
// or its directory, so writers never touch each other's files: Open
// removes only its own temporary files and replays only its own log. Files
// are named by the writer's clock and a counter of the process, so names
// of one replica never repeat. Open locks <dir>/_owners/<replica>.lock
// (flock) until Close, and fails with an errkind.Conflict error if a
// Writer of the same id, in any process, holds it: two writers of one id
// would replay and delete each other's log.
//
// A replica that crashed may come back under another id (a Deployment's
// new pod) or not at all. So a Writer adopts the logs of the others: at
// Open, and every minute, it tries the owner lock of each other replica
// with a log or spill directory or an owner lock (and of the writer
// without id, if _wal or _spill holds its segments). When it gets one,
// that replica is not running: it writes the rows of the replica's log and
// spill files as Open writes its own (counted in Stats.Recovered), and
// removes the replica's temporary files, its directories but its
// quarantine, and its owner lock. A replica that opens while its log is
// being adopted fails with a Conflict error, and may try again at once.
//
// DeleteEntity works while the writers go on, from any replica, and two at
// once from two replicas lose nothing: <dir>/_deletes is the table's lock.
// A delete holds it exclusively (flock) while it appends a tombstone
// (column, value, and the time of the delete) and rewrites every complete
// file, whichever replica wrote it, each through a temporary file renamed
// over it. A Writer holds the lock shared while it reads the tombstones
// and renames its files; while a delete holds it, the writer keeps its due
// files open and goes on taking rows, and tries again at the next tick
// (Flush, Close and Open wait for it).
//
// A Writer drops a row whose entity a tombstone names, if the row's
// Timestamp is before the delete's time, when it takes the row
// (Stats.Deleted), and filters the file it renames by the tombstones it
// had not read when it opened the file. So a row the delete did not find
// in a complete file (in a writer's queue, spill file, open file or
// write-ahead log, or left by a crash for the next Open) never reaches the
// table; rows of the entity made after the delete (by Timestamp) are kept.
// Replicas' clocks should agree (NTP): a row made within the clocks'
// difference of the delete may go either way. A writer reads the new
// tombstones every FlushInterval and whenever it renames files, by what
// was appended to _deletes since it last looked; the tombstones are kept
// (a few dozen bytes each), since a replica's log may be replayed long
// after a delete. A delete on NFS may list a directory as its client
// cached it, up to a minute old, without the files renamed there
// meanwhile; so a Writer also takes the rows of the tombstones it reads
// out of the files it renamed in the last 5 minutes, as a delete would.
//
// On NFS the lock needs NFS v4, or v3 with the lock manager, and not the
// local_lock mount option: Linux takes flock locks on the server there.
// Without locks Open fails.
//
// # Table operations
//
// List describes the complete files, Dir.ReadRows streams the rows of the
// complete files matching a filter, DeleteEntity rewrites the files holding
// an entity's rows without them (see Fleets), and AppendLabels and
// Dir.ReadLabels keep ground-truth labels joined by request id. The
// package-level functions and Dir act on complete files only, every
// replica's. Through a Writer:
//
//   - Writer.ReadRows also reads the rows the writer holds (queued, spilled,
//     or in open files), without completing a file. It has the writer
//     goroutine take the queue, hard-link the log segments holding the open
//     files' rows (hidden in <dir>/_wal/<replica>/, removed after the read,
//     and by Open after a crash) and copy the log's unwritten records; then it
//     reads the complete files but those that were open, and the rows of
//     the open files from the linked segments. So a report asked for every
//     few seconds does not roll the files into many small ones.
//     Rows of deleted entities are not read.
//   - Writer.DeleteEntity writes every accepted row first; the writer
//     goes on while the files are rewritten.
//   - Writer.AppendLabels names its label files with the replica id.
package tables
