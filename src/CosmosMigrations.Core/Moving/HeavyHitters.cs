namespace CosmosMigrations.Moving;

/// <summary>The heaviest keys of a stream in bounded memory (the Space-Saving algorithm of Metwally
/// et al.): at most <c>capacity</c> counters; a new key takes over the lightest counter and inherits
/// its weight as its possible overcount (<see cref="HeavyKey.Error"/>). Any key heavier than
/// total / capacity is guaranteed to be held. While no counter was ever taken over, every weight is
/// exact.</summary>
internal sealed class HeavyHitters
{
    private readonly int _capacity;
    private readonly Dictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly SortedSet<Counter> _byWeight = new(Counter.Order);
    private long _sequence;

    public HeavyHitters(int capacity)
    {
        if (capacity < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity));
        }

        _capacity = capacity;
    }

    /// <summary>True once a counter was taken over: weights are then upper bounds.</summary>
    public bool Estimated { get; private set; }

    /// <summary>Adds <paramref name="weight"/> (documents: 1; bytes: the size) and
    /// <paramref name="documents"/> to the key's counter.</summary>
    public void Add(string key, long weight, long documents = 1)
    {
        if (_counters.TryGetValue(key, out var counter))
        {
            _byWeight.Remove(counter);
            counter.Weight += weight;
            counter.Documents += documents;
            _byWeight.Add(counter);
            return;
        }

        if (_counters.Count < _capacity)
        {
            counter = new Counter(key, _sequence++) { Weight = weight, Documents = documents };
            _counters[key] = counter;
            _byWeight.Add(counter);
            return;
        }

        var lightest = _byWeight.Min!;
        _byWeight.Remove(lightest);
        _counters.Remove(lightest.Key);
        Estimated = true;
        counter = new Counter(key, _sequence++) { Weight = lightest.Weight + weight, Error = lightest.Weight, Documents = documents };
        _counters[key] = counter;
        _byWeight.Add(counter);
    }

    /// <summary>The <paramref name="count"/> heaviest keys, heaviest first.</summary>
    public IReadOnlyList<HeavyKey> Top(int count) =>
        _byWeight.Reverse().Take(count).Select(c => new HeavyKey(c.Key, c.Weight, c.Error, c.Documents)).ToList();

    private sealed class Counter
    {
        public static readonly IComparer<Counter> Order = Comparer<Counter>.Create((a, b) =>
        {
            var byWeight = a.Weight.CompareTo(b.Weight);
            return byWeight != 0 ? byWeight : a.Sequence.CompareTo(b.Sequence);
        });

        public Counter(string key, long sequence)
        {
            Key = key;
            Sequence = sequence;
        }

        public string Key { get; }

        public long Sequence { get; }

        public long Weight { get; set; }

        public long Error { get; set; }

        public long Documents { get; set; }
    }
}

/// <summary>A key's weight as counted (an upper bound: at most <see cref="Error"/> too high), and the
/// documents counted since its counter began (a lower bound when <see cref="Error"/> is not 0).</summary>
internal sealed record HeavyKey(string Key, long Weight, long Error, long Documents);
