using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Gatehouse.Server.Tests;

/// <summary>
/// What an instrument of one test server records from now on. Only that server's meters are listened to: other test
/// servers in this process publish instruments of the same name.
/// </summary>
public sealed class InstrumentRecording<T> : IDisposable
    where T : struct
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentQueue<T> _values = new();

    public InstrumentRecording(IServiceProvider services, string instrumentName)
    {
        var meters = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == instrumentName)
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<T>((_, value, _, _) => _values.Enqueue(value));
        _listener.Start();
    }

    /// <summary>Every value recorded so far, in order; an observed instrument is read first.</summary>
    public T[] Values
    {
        get
        {
            _listener.RecordObservableInstruments();
            return [.. _values];
        }
    }

    public void Dispose() => _listener.Dispose();
}
